package odata_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// dump answers a GET straight from a handler (no network, fixed root) so
// two stores can be compared byte for byte.
func dump(t *testing.T, s *odata.Store, target string) []byte {
	t.Helper()
	h := odata.NewHandler(s, odata.Options{ServiceRoot: "http://erpsim.test/api/domain/odata/"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", target, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

func TestNewStore_Deterministic(t *testing.T) {
	a, b := odata.NewStore(1, testNow), odata.NewStore(1, testNow.Add(5*time.Hour)) // same date, other hour
	later := odata.NewStore(1, testNow.AddDate(0, 0, 3))
	for _, target := range []string{
		"/Crm_Sales_SalesOrders?$select=default,Id,ObjectVersion&$expand=Lines($select=default,Id)",
		"/Crm_Invoicing_Invoices?$select=default,Id&$expand=Lines",
		"/Logistics_Shipment_Shipments?$select=default,Id&$expand=Lines",
		"/General_Products_Products?$select=default,Id",
		"/General_Contacts_Parties?$select=default,Id",
		"/Logistics_Inventory_CurrentBalances",
	} {
		da, db := dump(t, a, target), dump(t, b, target)
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between two stores of the same date", target)
		}
		if target[:len("/Crm_Sales_SalesOrders")] == "/Crm_Sales_SalesOrders" && bytes.Equal(da, dump(t, later, target)) {
			t.Errorf("%s: demo dates do not follow the clock", target)
		}
	}
	ids := "/Crm_Sales_SalesOrders?$select=Id"
	if !bytes.Equal(dump(t, a, ids), dump(t, later, ids)) {
		t.Error("Ids depend on the date; they must not")
	}
}

func TestNewStore_Scale(t *testing.T) {
	s := odata.NewStore(3, testNow)
	if got := string(dump(t, s, "/Crm_Sales_SalesOrders/$count")); got != "3000" {
		t.Errorf("scale 3: %s orders, want 3000", got)
	}
	if got := string(dump(t, s, "/Crm_Sales_Customers/$count")); got != string(dump(t, readStore(), "/Crm_Sales_Customers/$count")) {
		t.Errorf("scale changes the customers: %s", got)
	}
}

// Generated portal users add their own customers and orders; the demo rows
// stay as they are, and the same options give the same store.
func TestNewStoreWithUsers(t *testing.T) {
	demo, a, b := readStore(), odata.NewStoreWithUsers(1, 3, testNow), odata.NewStoreWithUsers(1, 3, testNow)
	of := func(n int) string {
		return url.QueryEscape("Customer eq 'Crm_Sales_Customers(" + fixture.CustomerID(n) + ")'")
	}
	for _, target := range []string{
		"/Crm_Sales_SalesOrders?$select=default,Id&$expand=Lines($select=default,Id)&$filter=" + of(1),
		"/Crm_Sales_SalesOrders?$select=default,Id&$filter=" + of(7),
		"/Crm_Invoicing_Invoices?$select=default,Id&$filter=" + of(2),
		"/Logistics_Inventory_CurrentBalances",
	} {
		if !bytes.Equal(dump(t, demo, target), dump(t, a, target)) {
			t.Errorf("%s: generated users change the demo rows", target)
		}
	}
	all := "/Crm_Sales_SalesOrders?$select=default,Id&$expand=Lines($select=default,Id)"
	if !bytes.Equal(dump(t, a, all), dump(t, b, all)) {
		t.Error("two stores with the same generated users differ")
	}
	if got := string(dump(t, a, "/Crm_Sales_SalesOrders/$count")); got != "1072" {
		t.Errorf("%s orders, want 1000 demo + 3×24 generated", got)
	}
}
