package redisstore_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/internal/redistest"
)

// Grants come back exactly as they went in (a lost field would widen or
// narrow what a user may see), also for a user without access (nil grants,
// ok), and an unknown user is a miss.
func TestGrants_RoundTrip(t *testing.T) {
	if n := reflect.TypeFor[access.Grant]().NumField(); n != 6 {
		t.Fatalf("access.Grant has %d fields: add the new ones to redisstore's wireGrant", n)
	}
	g := newClient(t, redistest.Start(t).URL()).Grants(0)
	ctx := context.Background()
	days := 30
	want := []access.Grant{
		{CustomerID: "c1", CustomerParty: erpclient.Ref{Set: "General_Contacts_Parties", ID: "11111111-1111-1111-1111-111111111111"}, Role: access.RoleOrdersWithPrices, DaysBack: &days},
		{CustomerID: "c2", CustomerParty: erpclient.Ref{Set: "General_Contacts_Parties", ID: "22222222-2222-2222-2222-222222222222"}, ShipToCustomerID: "c3",
			ShipToParty: erpclient.Ref{Set: "General_Contacts_Parties", ID: "33333333-3333-3333-3333-333333333333"}, Role: access.RoleBasic},
	}
	if err := g.Set(ctx, "u1", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := g.Get(ctx, "u1")
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("Get = %+v %v %v, want %+v", got, ok, err, want)
	}
	if err := g.Set(ctx, "none", nil); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := g.Get(ctx, "none"); err != nil || !ok || len(got) != 0 {
		t.Errorf("a user without access: %v %v %v", got, ok, err)
	}
	if _, ok, err := g.Get(ctx, "unknown"); ok || err != nil {
		t.Errorf("unknown user: %v %v", ok, err)
	}
}
