package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/graph/model"
)

// owners is the oracle for wrong-user data: for each sales order, invoice and
// shipment, whom it belongs to, read straight from the Domain API with
// another application's service token (no erpgraph code involved), and for
// each demo login the customers and parties it may act for (the fixture's
// external access rows).
type owners struct {
	mu          sync.RWMutex      // guards docCustomer: orders placed during the run are added
	docCustomer map[string]string // GUID of an order or invoice → customer GUID
	docParty    map[string]string // GUID of a shipment → recipient party GUID
	customers   map[string]map[string]bool
	parties     map[string]map[string]bool
}

// loadOwners reads the oracle from the Domain API at odataURL.
// portalUsers is how many generated portal users erpsim has.
func loadOwners(ctx context.Context, odataURL, token string, portalUsers int) (*owners, error) {
	o := &owners{docCustomer: map[string]string{}, docParty: map[string]string{},
		customers: map[string]map[string]bool{}, parties: map[string]map[string]bool{}}
	customerParty := map[string]string{}
	reads := []struct {
		set, ref string
		into     map[string]string
	}{
		{"Crm_Sales_SalesOrders", "Customer", o.docCustomer},
		{"Crm_Invoicing_Invoices", "Customer", o.docCustomer},
		{"Logistics_Shipment_Shipments", "ToParty", o.docParty},
		{"Crm_Sales_Customers", "Party", customerParty},
	}
	for _, rd := range reads {
		if err := readRefs(ctx, odataURL, token, rd.set, rd.ref, rd.into); err != nil {
			return nil, err
		}
	}
	for _, a := range fixture.AccessesIn(portalUsers) {
		c := fixture.CustomerID(a.CustomerN)
		if o.customers[a.UserLogin] == nil {
			o.customers[a.UserLogin], o.parties[a.UserLogin] = map[string]bool{}, map[string]bool{}
		}
		o.customers[a.UserLogin][c] = true
		o.parties[a.UserLogin][customerParty[c]] = true
	}
	return o, nil
}

// readRefs reads Id and one reference property of every row of set, following
// @odata.nextLink, into id → referenced GUID.
func readRefs(ctx context.Context, odataURL, token, set, ref string, into map[string]string) error {
	next := odataURL + set + "?" + url.Values{"$select": {"Id," + ref}}.Encode()
	for pages := 0; next != ""; pages++ {
		if pages > 10_000 {
			return fmt.Errorf("oracle: %s: too many pages", set)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("oracle: %s: %w", set, err)
		}
		var page struct {
			Value []map[string]any `json:"value"`
			Next  string           `json:"@odata.nextLink"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return fmt.Errorf("oracle: %s: HTTP %d: %v", set, res.StatusCode, err)
		}
		for _, row := range page.Value {
			id, _ := row["Id"].(string)
			into[strings.ToLower(id)] = refGUID(row[ref])
		}
		next = page.Next
	}
	return nil
}

// refGUID is the GUID of {"@odata.id":"Set(guid)"}, or "".
func refGUID(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["@odata.id"].(string)
	_, rest, ok := strings.Cut(s, "(")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(rest, ")"))
}

// verdict is what one response tells the invariants.
type verdict struct {
	codes      []string // extensions.code of each error ("" = none)
	untyped    []string // errors without a documented code, or answers that are not GraphQL
	wrongUser  []string // documents of someone else's customers
	dataServed bool
}

// judge checks one response of login's. status and err describe the HTTP
// exchange (err: no answer at all).
func (o *owners) judge(login string, resp *gqlResponse, status int, err error) verdict {
	var v verdict
	if err != nil {
		v.codes = []string{"TRANSPORT"}
		return v
	}
	if resp == nil || (len(resp.Errors) == 0 && (len(resp.Data) == 0 || string(resp.Data) == "null")) {
		v.untyped = append(v.untyped, fmt.Sprintf("HTTP %d without data or errors", status))
		return v
	}
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		v.codes = append(v.codes, code)
		if !errcode.Known(code) { // anything outside the registry is an untyped error: an invariant violation
			v.untyped = append(v.untyped, fmt.Sprintf("HTTP %d error %q without a documented code (%q)", status, e.Message, code))
		}
	}
	if len(resp.Data) == 0 || string(resp.Data) == "null" {
		return v
	}
	var data any
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		v.untyped = append(v.untyped, "data is not JSON")
		return v
	}
	v.dataServed = true
	walk(data, func(obj map[string]any) {
		id, _ := obj["id"].(string)
		if id == "" {
			return
		}
		if problem := o.owned(login, id); problem != "" {
			v.wrongUser = append(v.wrongUser, problem)
		}
	})
	return v
}

// owned checks that the document with global ID id belongs to one of login's
// customers; other types are not customer-owned documents.
func (o *owners) owned(login, id string) string {
	typ, guid, err := model.DecodeID(id)
	if err != nil {
		return fmt.Sprintf("%s got an ID erpgraph could not have issued: %q", login, id)
	}
	switch typ {
	case "SalesOrder", "Invoice":
		o.mu.RLock()
		c, ok := o.docCustomer[guid]
		o.mu.RUnlock()
		if !ok || !o.customers[login][c] {
			return fmt.Sprintf("%s got %s %s of customer %q", login, typ, guid, c)
		}
	case "Shipment":
		p, ok := o.docParty[guid]
		if !ok || !o.parties[login][p] {
			return fmt.Sprintf("%s got Shipment %s to party %q", login, guid, p)
		}
	}
	return ""
}

// addOrder records an order placed during the run for customer (GUIDs); the ledger's final read checks that
// ERP.net holds it for that customer.
func (o *owners) addOrder(order, customer string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.docCustomer[order] = customer
}

var errInvariants = errors.New("invariants failed")
