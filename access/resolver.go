// Package access decides what a signed-in user may see. It resolves ERP.net customer external access
// (Crm_Sales_CustomerExternalAccess) into a Scope that erpclient applies as the mandatory filter of every query on
// customer-owned data, and that checks every returned entity again.
package access

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
)

// Config configures a Resolver.
type Config struct {
	// AllowInternalUsers lets internal ERP.net users through with an unrestricted scope. ERP.net licensing expects
	// every internal user to hold their own session, so this is off by default.
	AllowInternalUsers bool
	// CacheTTL is how long a user's scope is reused; 0 means 30 s, negative disables the cache. Short, because
	// revoked access must stop soon.
	CacheTTL time.Duration
	// Cache holds the users' grants between requests; default a MemoryGrantCache of maxCached users living
	// CacheTTL. A shared one (several replicas) goes here.
	Cache GrantCache
	// Now is the clock for days-back windows and the cache; default time.Now.
	Now func() time.Time
	// Logger receives skipped access rows (unknown roles); default discard.
	Logger *slog.Logger
}

// DefaultCacheTTL is the scope cache lifetime when Config.CacheTTL is 0.
const DefaultCacheTTL = 30 * time.Second

// maxCached bounds the default cache; the least recently used user goes first.
const maxCached = 10000

// lookupTimeout bounds one shared access lookup, which runs detached from the first caller's cancellation
// (within its deadline).
const lookupTimeout = 30 * time.Second

// Resolver turns verified users into scopes, caching them per user briefly.
type Resolver struct {
	erp *erpclient.Client
	cfg Config

	cache GrantCache // nil: no caching
	group singleflight.Group
}

// NewResolver returns a Resolver that reads external access through erp (with the service session).
func NewResolver(erp *erpclient.Client, cfg Config) *Resolver {
	cfg.CacheTTL = cmp.Or(cfg.CacheTTL, DefaultCacheTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{erp: erp, cfg: cfg, cache: cfg.Cache}
	if r.cache == nil && cfg.CacheTTL > 0 {
		r.cache = NewMemoryGrantCache(maxCached, cfg.CacheTTL, cfg.Now)
	}
	return r
}

// Scope returns what u may see. Refused users (service tokens, internal users unless allowed, tokens without a
// user id) get an error matching ErrForbidden; external users without customer access get an empty scope.
// Concurrent calls for one user share one lookup.
func (r *Resolver) Scope(ctx context.Context, u *auth.User) (*Scope, error) {
	if u == nil {
		return nil, forbidden("no signed-in user")
	}
	id, err := uuid.Parse(u.ID)
	if err != nil || u.ID == "" {
		return nil, forbidden("the access token names no ERP.net user")
	}
	userID := id.String()
	switch u.UserType {
	case auth.ExternalCommunityUser:
	case auth.InternalUser:
		if !r.cfg.AllowInternalUsers {
			return nil, forbidden("internal ERP.net users cannot use this service; sign in with a customer portal account")
		}
		return &Scope{userID: userID, internal: true, now: r.cfg.Now}, nil
	case auth.SystemUserNoLogin:
		return nil, forbidden("service accounts cannot use this service")
	default:
		return nil, forbidden("this kind of ERP.net user cannot use this service")
	}

	if s, ok := r.cached(ctx, userID); ok {
		return s, nil
	}
	ch := r.group.DoChan(userID, func() (any, error) {
		// Detached from the first caller's cancellation, not from its deadline: the ERP.net scheduler admits
		// the lookup by the time the operation really has, so an operation that cannot make it is refused at
		// once instead of after a lookup that outlasts it.
		end := time.Now().Add(lookupTimeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
			end = dl
		}
		lctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
		defer cancel()
		s, err := r.lookup(lctx, userID)
		if err != nil {
			return nil, err
		}
		r.store(lctx, userID, s)
		return s, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Scope), nil
	}
}

// cached is the user's scope rebuilt from cached grants, if the cache has them.
func (r *Resolver) cached(ctx context.Context, userID string) (*Scope, bool) {
	if r.cache == nil {
		return nil, false
	}
	grants, ok, err := r.cache.Get(ctx, userID)
	if err != nil {
		r.cfg.Logger.WarnContext(ctx, "access: scope cache read failed; reading access from ERP.net", "user", userID, "err", err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return &Scope{userID: userID, grants: grants, now: r.cfg.Now}, true
}

func (r *Resolver) store(ctx context.Context, userID string, s *Scope) {
	if r.cache == nil {
		return
	}
	if err := r.cache.Set(ctx, userID, s.grants); err != nil {
		r.cfg.Logger.WarnContext(ctx, "access: scope cache write failed", "user", userID, "err", err)
	}
}

// accessRow is a Crm_Sales_CustomerExternalAccess row with the customers' parties expanded (shipments are
// addressed to parties, not customers).
type accessRow struct {
	erpclient.Entity
	Customer       *customerRef `json:"Customer,omitempty"`
	ShipToCustomer *customerRef `json:"ShipToCustomer,omitempty"`
	Role           string       `json:"Role,omitempty"`
	DaysBackAccess *int         `json:"DaysBackAccess,omitempty"`
}

type customerRef struct {
	erpclient.Entity
	Party *erpclient.Ref `json:"Party,omitempty"`
}

func (r *Resolver) lookup(ctx context.Context, userID string) (*Scope, error) {
	rows, err := erpclient.All[accessRow](ctx, r.erp, erpclient.Query{
		Set:    erpclient.SetCustomerExternalAccess,
		Filter: erpclient.Eq("User", erpclient.RefTo(erpclient.SetUsers, userID)),
		Select: []string{"Role", "DaysBackAccess"},
		Expand: []erpclient.Expand{
			{Prop: "Customer", Select: []string{"Party"}},
			{Prop: "ShipToCustomer", Select: []string{"Party"}},
		},
		// Access resolution is the service's own read: it is what builds the user's scope.
		Unscoped: true,
	})
	if err != nil {
		return nil, fmt.Errorf("access: read external access: %w", err)
	}
	s := &Scope{userID: userID, now: r.cfg.Now}
	for _, row := range rows {
		g, err := grantOf(row)
		if err != nil {
			// A row erpgraph cannot interpret grants nothing; the others still apply.
			r.cfg.Logger.WarnContext(ctx, "access: external access row skipped", "row", row.ID, "user", userID, "err", err)
			continue
		}
		s.grants = append(s.grants, g)
	}
	return s, nil
}

func grantOf(row accessRow) (Grant, error) {
	role, err := ParseRole(row.Role)
	if err != nil {
		return Grant{}, err
	}
	if row.Customer == nil || row.Customer.ID == "" || row.Customer.Party == nil {
		return Grant{}, fmt.Errorf("access: row has no customer or customer party")
	}
	if row.DaysBackAccess != nil && *row.DaysBackAccess < 0 {
		return Grant{}, fmt.Errorf("access: negative DaysBackAccess %d", *row.DaysBackAccess)
	}
	g := Grant{CustomerID: row.Customer.ID, CustomerParty: *row.Customer.Party, Role: role, DaysBack: row.DaysBackAccess}
	if st := row.ShipToCustomer; st != nil && st.ID != "" {
		if st.Party == nil {
			return Grant{}, fmt.Errorf("access: ship-to customer has no party")
		}
		g.ShipToCustomerID, g.ShipToParty = st.ID, *st.Party
	}
	return g, nil
}
