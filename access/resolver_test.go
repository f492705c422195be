package access_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

func start(t *testing.T) (*erpsim.Sim, *erpclient.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	erp, err := erpclient.New(ctx, erpclient.Config{InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(erp.Close)
	return sim, erp
}

func user(login string) *auth.User {
	u, _ := fixture.UserByLogin(login)
	return &auth.User{Subject: u.Login, ID: u.ID(), UserType: u.UserType, Name: u.Name}
}

// accessReads counts the external-access lookups erpsim served.
func accessReads(sim *erpsim.Sim) int {
	n := 0
	for _, r := range sim.Requests() {
		if strings.Contains(r.Path, erpclient.SetCustomerExternalAccess) || strings.Contains(r.RawQuery, erpclient.SetCustomerExternalAccess) {
			n++
		}
	}
	return n
}

func TestResolver_Grants(t *testing.T) {
	_, erp := start(t)
	r := access.NewResolver(erp, access.Config{})
	ctx := context.Background()
	tests := []struct {
		login string
		want  map[string]access.Role // customer GUID → role
		days  *int
	}{
		{fixture.OwnerLogin, map[string]access.Role{fixture.CustomerID(1): access.RoleOwner}, nil},
		{fixture.MultiLogin, map[string]access.Role{fixture.CustomerID(2): access.RoleOrders, fixture.CustomerID(3): access.RoleOrdersBilling}, ptr(365)},
		{fixture.BasicLogin, map[string]access.Role{fixture.CustomerID(4): access.RoleBasic}, ptr(30)},
		{fixture.NoAccessLogin, map[string]access.Role{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.login, func(t *testing.T) {
			s, err := r.Scope(ctx, user(tt.login))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]access.Role{}
			for _, g := range s.Grants() {
				got[g.CustomerID] = g.Role
				if (g.DaysBack == nil) != (tt.days == nil) || (g.DaysBack != nil && *g.DaysBack != *tt.days) {
					t.Errorf("%s: days back %v, want %v", g.CustomerID, g.DaysBack, tt.days)
				}
				if g.CustomerParty.ID == "" || g.CustomerParty.Set == "" {
					t.Errorf("%s: no customer party", g.CustomerID)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("grants %v, want %v", got, tt.want)
			}
			for c, role := range tt.want {
				if got[c] != role {
					t.Errorf("customer %s: role %v, want %v", c, got[c], role)
				}
			}
			if s.Empty() != (len(tt.want) == 0) || s.Internal() {
				t.Errorf("Empty() = %v, Internal() = %v", s.Empty(), s.Internal())
			}
		})
	}
}

func ptr(n int) *int { return &n }

func TestResolver_Refusals(t *testing.T) {
	_, erp := start(t)
	ctx := context.Background()
	strict := access.NewResolver(erp, access.Config{})
	lenient := access.NewResolver(erp, access.Config{AllowInternalUsers: true})
	noID := user(fixture.OwnerLogin)
	noID.ID = ""
	badID := user(fixture.OwnerLogin)
	badID.ID = "Systems_Security_Users(x)' or '1'='1"
	tests := []struct {
		name string
		r    *access.Resolver
		u    *auth.User
	}{
		{"internal user", strict, user(fixture.InternalLogin)},
		{"administrator", strict, user(fixture.AdminLogin)},
		{"service account", lenient, user(fixture.ServiceUserLogin)},
		{"no user id", lenient, noID},
		{"user id not a GUID", lenient, badID},
		{"unknown user type", lenient, &auth.User{ID: fixture.CustomerID(1), UserType: "Robot"}},
		{"nil user", lenient, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.r.Scope(ctx, tt.u)
			var fe *access.ForbiddenError
			if !errors.Is(err, access.ErrForbidden) || !errors.As(err, &fe) || fe.PublicMessage() == "" {
				t.Fatalf("Scope = %v, want a ForbiddenError", err)
			}
		})
	}
	s, err := lenient.Scope(ctx, user(fixture.InternalLogin))
	if err != nil || !s.Internal() {
		t.Fatalf("allowed internal user: %v, internal=%v", err, s != nil && s.Internal())
	}
	if !s.Allows(fixture.CustomerID(7), access.ViewPrices) {
		t.Error("internal scope does not allow prices")
	}
}

func TestResolver_CacheAndSingleflight(t *testing.T) {
	sim, erp := start(t)
	var now atomic.Pointer[time.Time]
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	now.Store(&t0)
	r := access.NewResolver(erp, access.Config{CacheTTL: time.Minute, Now: func() time.Time { return *now.Load() }})
	ctx := context.Background()
	sim.ResetRequests()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Scope(ctx, user(fixture.MultiLogin)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := accessReads(sim); n != 1 {
		t.Fatalf("20 concurrent first requests made %d access lookups, want 1", n)
	}
	if _, err := r.Scope(ctx, user(fixture.MultiLogin)); err != nil {
		t.Fatal(err)
	}
	if n := accessReads(sim); n != 1 {
		t.Fatalf("cached scope looked up again (%d lookups)", n)
	}
	later := t0.Add(61 * time.Second)
	now.Store(&later)
	if _, err := r.Scope(ctx, user(fixture.MultiLogin)); err != nil {
		t.Fatal(err)
	}
	if n := accessReads(sim); n != 2 {
		t.Fatalf("after the TTL: %d lookups, want 2", n)
	}
}
