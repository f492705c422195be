package erpsim_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// Generated portal users sign in like the demo users, each with a customer of
// their own that has a full dashboard of orders (lines, invoices), and the
// role the fixture gives them.
func TestGeneratedUsers(t *testing.T) {
	const n = 10
	s := startSim(t, erpsim.Options{Users: n, Limits: erpsim.Unlimited()})
	svc := mustServiceToken(t, s)
	odata := func(path string, q url.Values) map[string]any {
		t.Helper()
		r := get(t, s.ODataURL()+path+"?"+q.Encode(), svc)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		return decodeJSON(t, r.body)
	}
	customers := map[string]bool{}
	for _, k := range []int{1, 7, 9, 10} {
		u := fixture.GeneratedUser(k)
		t.Run(u.Login, func(t *testing.T) {
			tok := mustLogin(t, s, fixture.PlaygroundClientID, u.Login, "openid", "profile", "read")
			_, _, claims := verifiedClaims(t, s, tok.AccessToken)
			if claims["sub"] != u.Login || claims["id"] != u.ID() || claims["user_type"] != fixture.ExternalCommunityUser {
				t.Errorf("claims %v", claims)
			}
			acc := odata("Crm_Sales_CustomerExternalAccess", url.Values{
				"$filter": {"User eq 'Systems_Security_Users(" + u.ID() + ")'"}, "$select": {"Customer,Role"}})
			rows, _ := acc["value"].([]any)
			if len(rows) != 1 {
				t.Fatalf("%d access rows, want 1: %v", len(rows), acc)
			}
			row := rows[0].(map[string]any)
			customer := "Crm_Sales_Customers(" + fixture.CustomerID(fixture.GeneratedN(k)) + ")"
			if ref, _ := row["Customer"].(map[string]any); ref["@odata.id"] != customer || row["Role"] != fixture.GeneratedRole(k) {
				t.Errorf("access row %v, want customer %s as %s", row, customer, fixture.GeneratedRole(k))
			}
			customers[customer] = true
			orders := odata("Crm_Sales_SalesOrders", url.Values{"$filter": {"Customer eq '" + customer + "'"},
				"$select": {"Id"}, "$expand": {"Lines($select=Id)"}, "$count": {"true"}})
			if c, _ := orders["@odata.count"].(float64); c < 20 {
				t.Errorf("%v orders, want at least a dashboard page (20)", c)
			}
			for _, o := range orders["value"].([]any) {
				if lines, _ := o.(map[string]any)["Lines"].([]any); len(lines) == 0 {
					t.Errorf("order without lines: %v", o)
				}
			}
			r := get(t, s.ODataURL()+"Crm_Invoicing_Invoices/$count?"+url.Values{"$filter": {"Customer eq '" + customer + "'"}}.Encode(), svc)
			if c, err := strconv.Atoi(string(r.body)); err != nil || c == 0 {
				t.Errorf("invoices of %s: %q, want some", customer, r.body)
			}
		})
	}
	if len(customers) != 4 {
		t.Errorf("the users share customers: %v", customers)
	}
	if _, err := s.Login(context.Background(), fixture.PlaygroundClientID, fixture.GeneratedLogin(n+1), fixture.DemoPassword); err == nil {
		t.Errorf("%s signed in, but only %d users were generated", fixture.GeneratedLogin(n+1), n)
	}
	if _, err := erpsim.Start(context.Background(), erpsim.Options{Users: fixture.MaxGeneratedUsers + 1}); err == nil {
		t.Error("Start accepted more generated users than the logins allow")
	}
}

func TestGeneratedIndex(t *testing.T) {
	for login, want := range map[string]int{"portal.user001": 1, "portal.user010": 10, "portal.user011": 0,
		"portal.user1": 0, "portal.user0001": 0, "portal.user+01": 0, "portal.user000": 0, fixture.OwnerLogin: 0} {
		if got := fixture.GeneratedIndex(login, 10); got != want {
			t.Errorf("GeneratedIndex(%q) = %d, want %d", login, got, want)
		}
	}
	if got := fixture.GeneratedIndex("portal.user1000", 1000); got != 1000 {
		t.Errorf("portal.user1000 = %d", got)
	}
}
