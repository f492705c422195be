package erpclient

import (
	"encoding/json"
	"net/url"
	"os"
	"reflect"
	"testing"
)

// orderWithCustomer shadows the order's Customer reference with an expanded customer, as graph/loader's rows do.
type orderWithCustomer struct {
	SalesOrder
	Customer *Customer `json:"Customer,omitempty"`
}

// decodePage (goccy/go-json) decodes exactly what encoding/json decodes: the fixture page, and rows whose
// expanded fields shadow an embedded entity's reference.
func TestDecodePage_MatchesEncodingJSON(t *testing.T) {
	c := &Client{root: mustURL(t, "http://127.0.0.1:8089/api/domain/odata/")}
	body, err := os.ReadFile("testdata/salesorders_page.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePage[SalesOrder](c, SetSalesOrders, body)
	if err != nil {
		t.Fatal(err)
	}
	var want collection[SalesOrder]
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	for i := range *want.Value {
		afterDecode(&(*want.Value)[i])
	}
	if !reflect.DeepEqual(got.Items, *want.Value) || len(got.Items) == 0 {
		t.Errorf("decodePage:\n%+v\nencoding/json:\n%+v", got.Items, *want.Value)
	}

	nested := []byte(`{"value":[{"@odata.id":"Crm_Sales_SalesOrders(5d1c0c1e-8a4b-4c2e-9d55-0b6f3f1a2b01)","DocumentNo":"1",
	  "Customer":{"@odata.id":"Crm_Sales_Customers(45e9a1b2-0266-53be-95ec-8fc63f706a74)","Id":"45e9a1b2-0266-53be-95ec-8fc63f706a74","Number":"C1",
	    "Party":{"@odata.id":"General_Contacts_Parties(55e9a1b2-0266-53be-95ec-8fc63f706a74)"}}}]}`)
	rows, err := decodePage[orderWithCustomer](c, SetSalesOrders, nested)
	if err != nil {
		t.Fatal(err)
	}
	var wantRows collection[orderWithCustomer]
	if err := json.Unmarshal(nested, &wantRows); err != nil {
		t.Fatal(err)
	}
	for i := range *wantRows.Value {
		afterDecode(&(*wantRows.Value)[i])
	}
	r := rows.Items[0]
	if !reflect.DeepEqual(rows.Items, *wantRows.Value) || r.Customer == nil || r.Customer.Number != "C1" ||
		r.SalesOrder.Customer != nil || r.Customer.Party == nil || r.ID == "" {
		t.Errorf("decodePage: %+v (customer %+v); encoding/json: %+v", r, r.Customer, (*wantRows.Value)[0])
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
