package erpclient_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

func TestMultiLang_Get(t *testing.T) {
	var m erpclient.MultiLang
	if err := json.Unmarshal([]byte(`{"bg":"Кафе","DE":"Kaffee","fr":null}`), &m); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lang     string
		fallback []string
		want     string
	}{
		{"BG", nil, "Кафе"},
		{"de", nil, "Kaffee"},
		{"fr", []string{"de"}, "Kaffee"}, // null counts as absent
		{"it", nil, "Кафе"},              // no EN: the alphabetically first language (BG before DE), stable
	}
	for _, tt := range tests {
		if got := m.Get(tt.lang, tt.fallback...); got != tt.want {
			t.Errorf("Get(%q, %v) = %q, want %q", tt.lang, tt.fallback, got, tt.want)
		}
	}
	var plain erpclient.MultiLang
	if err := json.Unmarshal([]byte(`"just text"`), &plain); err != nil || plain.Get("EN") != "just text" {
		t.Errorf("plain string: %v %v", plain, err)
	}
	var empty erpclient.MultiLang
	if empty.Get("EN") != "" {
		t.Error("empty MultiLang has text")
	}
}

func TestJSON_RoundTrips(t *testing.T) {
	in := erpclient.NewSalesOrder{
		Customer:             erpclient.Ref{Set: erpclient.SetCustomers, ID: custID},
		RequiredDeliveryDate: ptr(erpclient.DateTime(time.Date(2025, 3, 20, 0, 0, 0, 0, time.UTC))),
		Lines: []erpclient.NewSalesOrderLine{{
			Product: erpclient.Ref{Set: erpclient.SetProducts, ID: orderID}, Quantity: erpclient.Quantity{Value: "2.500", Unit: "pcs"},
			UnitPrice: &erpclient.Amount{Value: "0.10", Currency: "EUR"},
		}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Customer":{"@odata.id":"Crm_Sales_Customers(` + custID + `)"},"RequiredDeliveryDate":"2025-03-20T00:00:00Z","Lines":[{"Product":{"@odata.id":"General_Products_Products(` + orderID + `)"},"Quantity":{"Value":2.500,"Unit":"pcs"},"UnitPrice":{"Value":0.10,"Currency":"EUR"}}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if _, err := json.Marshal(erpclient.Amount{Value: "1e3"}); err == nil {
		t.Error("a non-decimal Amount was encoded")
	}
	var d erpclient.DateTime
	if err := json.Unmarshal([]byte(`"2020-05-08T10:00:00+02:00"`), &d); err != nil || d.String() != "2020-05-08T08:00:00Z" {
		t.Errorf("offset date-time: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`"yesterday"`), &d); err == nil {
		t.Error("accepted a non-date")
	}
	if erpclient.StateReleased.Rank() <= erpclient.StateFirmPlanned.Rank() || erpclient.DocumentState("Bogus").Rank() != -1 || erpclient.DocumentState("Bogus").Valid() {
		t.Error("document state order")
	}
	if got := erpclient.Decimal("12.50").Float64(); got != 12.5 {
		t.Errorf("Float64 %v", got)
	}
}

func ptr[T any](v T) *T { return &v }
