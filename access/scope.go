package access

import (
	"slices"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Grant is one customer the user may act for (one Crm_Sales_CustomerExternalAccess row).
type Grant struct {
	CustomerID       string        // GUID of the customer
	CustomerParty    erpclient.Ref // the customer's party: shipments are addressed to it (ToParty)
	ShipToCustomerID string        // when set, the grant covers only documents delivered to this ship-to customer
	ShipToParty      erpclient.Ref // the ship-to customer's party (zero unless ShipToCustomerID is set)
	Role             Role
	DaysBack         *int // documents dated on or after today minus DaysBack days; nil = no limit
}

// Scope is what one user may see. It implements erpclient.ScopeFilter (the mandatory filter of every query on a
// customer-owned set) and Check (the post-check of every returned entity). A Scope is immutable and safe for
// concurrent use.
type Scope struct {
	userID   string
	internal bool // an internal user the server allows: no customer restriction
	grants   []Grant
	now      func() time.Time
}

// UserID is the ERP.net user GUID the scope belongs to.
func (s *Scope) UserID() string { return s.userID }

// Internal reports whether the scope is an internal user's, which is not restricted to customers.
func (s *Scope) Internal() bool { return s.internal }

// Grants returns the user's customer grants (none for internal users).
func (s *Scope) Grants() []Grant { return slices.Clone(s.grants) }

// Empty reports whether the user may see nothing at all (an external user without customer access).
func (s *Scope) Empty() bool { return !s.internal && len(s.grants) == 0 }

// Allows reports whether the user's role for customerID grants p (always true for internal scopes).
func (s *Scope) Allows(customerID string, p Permission) bool {
	if s.internal {
		return true
	}
	for _, g := range s.grants {
		if g.CustomerID == customerID && g.Role.Allows(p) {
			return true
		}
	}
	return false
}

// AllowsAny reports whether the user's role for at least one customer grants p.
func (s *Scope) AllowsAny(p Permission) bool {
	if s.internal {
		return true
	}
	for _, g := range s.grants {
		if g.Role.Allows(p) {
			return true
		}
	}
	return false
}

// RoleFor returns the user's highest role for customerID.
func (s *Scope) RoleFor(customerID string) (Role, bool) {
	var best Role
	for _, g := range s.grants {
		if (g.CustomerID == customerID || g.ShipToCustomerID == customerID) && g.Role > best {
			best = g.Role
		}
	}
	return best, best > 0
}

// CustomerByParty returns the granted customer whose party is partyID (shipments name only their ToParty).
func (s *Scope) CustomerByParty(partyID string) (string, bool) {
	for _, g := range s.grants {
		if g.CustomerParty.ID == partyID {
			return g.CustomerID, true
		}
		if g.ShipToCustomerID != "" && g.ShipToParty.ID == partyID {
			return g.ShipToCustomerID, true
		}
	}
	return "", false
}

// Apply puts the scope on q: its filter for restricted users, the explicit Unscoped opt-out for internal scopes
// (which erpclient otherwise refuses on customer-owned sets, so no path can forget the scope).
func (s *Scope) Apply(q *erpclient.Query) {
	if s.internal {
		q.Scope, q.Unscoped = nil, true
		return
	}
	q.Scope, q.Unscoped = s, false
}

// cutoff is the first visible document date of g, or nil when g has no days-back limit. ERP.net document dates are
// midnight UTC, so the window counts whole UTC days back from today.
func (s *Scope) cutoff(g Grant) *time.Time {
	if g.DaysBack == nil {
		return nil
	}
	now := s.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	c := today.AddDate(0, 0, -*g.DaysBack)
	return &c
}

// withGrants is a copy of s restricted to gs.
func (s *Scope) withGrants(gs []Grant) *Scope {
	return &Scope{userID: s.userID, internal: s.internal, grants: gs, now: s.now}
}
