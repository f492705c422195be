package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
)

// Grants is access.GrantCache in Redis: a user's customer grants, read from
// ERP.net by one replica, serve every replica for the cache's short
// lifetime. The access resolver treats a failure as a miss (an ERP.net read),
// never as a refusal.
type Grants struct {
	c   *Client
	ttl time.Duration
}

var _ access.GrantCache = (*Grants)(nil)

// Grants is the access-scope cache on this client; entries live for ttl
// (access.DefaultCacheTTL when 0).
func (c *Client) Grants(ttl time.Duration) *Grants {
	if ttl <= 0 {
		ttl = access.DefaultCacheTTL
	}
	return &Grants{c: c, ttl: ttl}
}

// wireGrant is how a Grant is stored: plain fields (erpclient.Ref's own JSON
// is the OData entity id, which has no form for the zero Ref). A field added
// to access.Grant must be added here; the round-trip test counts them.
type wireGrant struct {
	CustomerID       string
	CustomerParty    [2]string // Set, ID
	ShipToCustomerID string
	ShipToParty      [2]string
	Role             int
	DaysBack         *int
}

func toWire(gs []access.Grant) []wireGrant {
	out := make([]wireGrant, len(gs))
	for i, g := range gs {
		out[i] = wireGrant{CustomerID: g.CustomerID, CustomerParty: [2]string{g.CustomerParty.Set, g.CustomerParty.ID},
			ShipToCustomerID: g.ShipToCustomerID, ShipToParty: [2]string{g.ShipToParty.Set, g.ShipToParty.ID},
			Role: int(g.Role), DaysBack: g.DaysBack}
	}
	return out
}

func fromWire(ws []wireGrant) []access.Grant {
	if len(ws) == 0 {
		return nil
	}
	out := make([]access.Grant, len(ws))
	for i, w := range ws {
		out[i] = access.Grant{CustomerID: w.CustomerID, CustomerParty: erpclient.Ref{Set: w.CustomerParty[0], ID: w.CustomerParty[1]},
			ShipToCustomerID: w.ShipToCustomerID, ShipToParty: erpclient.Ref{Set: w.ShipToParty[0], ID: w.ShipToParty[1]},
			Role: access.Role(w.Role), DaysBack: w.DaysBack}
	}
	return out
}

// Get implements access.GrantCache.
func (g *Grants) Get(ctx context.Context, userID string) ([]access.Grant, bool, error) {
	b, err := g.c.rdb.Get(ctx, g.c.key("grants", userID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: grants: %w", err)
	}
	var ws []wireGrant
	if err := json.Unmarshal(b, &ws); err != nil {
		return nil, false, fmt.Errorf("redisstore: grants: %w", err)
	}
	return fromWire(ws), true, nil
}

// Set implements access.GrantCache.
func (g *Grants) Set(ctx context.Context, userID string, grants []access.Grant) error {
	b, err := json.Marshal(toWire(grants))
	if err != nil {
		return fmt.Errorf("redisstore: grants: %w", err)
	}
	if err := g.c.rdb.Set(ctx, g.c.key("grants", userID), b, g.ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: grants: %w", err)
	}
	return nil
}
