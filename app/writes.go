package app

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/server"
)

// WritesConfig is the write side's configuration (issue 11: mutations of sales orders).
type WritesConfig struct {
	// Enabled turns the mutations on; off, they answer WRITES_DISABLED and the service token asks for `read`
	// only. ERPGRAPH_WRITES, -writes; default off.
	Enabled bool
	// SubmitState is where submitSalesOrder moves NEW orders: Planned, FirmPlanned or Released.
	// ERPGRAPH_SUBMIT_STATE; default Planned.
	SubmitState string
	// IdempotencyTTL is how long idempotency keys are remembered. ERPGRAPH_IDEMPOTENCY_TTL; default 24h.
	IdempotencyTTL time.Duration
	// PerMinute is each user's mutation rate (burst 10); negative disables it. ERPGRAPH_WRITES_PER_MINUTE;
	// default 30.
	PerMinute int
}

// writeSettings are the registry rows of the write side (appended to registry in init, so settings.go keeps one
// block per part).
func writeSettings() []setting {
	return []setting{
		{env: "ERPGRAPH_WRITES", flag: "writes", def: "off", boolean: true, help: "enable the mutations (the service token then asks for `read update`; off: `read` only, and mutations answer WRITES_DISABLED)",
			field: onOff(func(c *Config) *bool { return &c.Writes.Enabled })},
		{env: "ERPGRAPH_SUBMIT_STATE", flag: "submit-state", def: "Planned", help: "the ERP.net state submitSalesOrder moves NEW orders to: Planned, FirmPlanned or Released",
			field: text(func(c *Config) *string { return &c.Writes.SubmitState }),
			check: func(c Config, _ *loaded) error {
				switch erpclient.DocumentState(c.Writes.SubmitState) {
				case "", erpclient.StatePlanned, erpclient.StateFirmPlanned, erpclient.StateReleased:
					return nil
				}
				return fmt.Errorf("%q is not Planned, FirmPlanned or Released", c.Writes.SubmitState)
			}},
		{env: "ERPGRAPH_IDEMPOTENCY_TTL", flag: "idempotency-ttl", def: "24h", help: "how long mutation idempotency keys are remembered",
			field: duration(func(c *Config) *time.Duration { return &c.Writes.IdempotencyTTL }, 24*time.Hour)},
		{env: "ERPGRAPH_WRITES_PER_MINUTE", flag: "writes-per-minute", def: "30", help: `mutations per minute per user (burst 10; "off" to disable); excess gets RATE_LIMITED`,
			field: count(func(c *Config) *int { return &c.Writes.PerMinute }, 30, true)},
	}
}

func init() {
	registry = append(registry, writeSettings()...)
	rules = append(rules, func(c Config, _ *loaded) []error { return c.validateWrites() })
}

// defaultScopes: least privilege, `update` only when writes are on.
func (c Config) defaultScopes() []string {
	if c.Writes.Enabled {
		return []string{"read", "update"}
	}
	return []string{"read"}
}

// validateWrites checks the write side against the service token's scopes.
func (c Config) validateWrites() []error {
	hasUpdate := slices.Contains(c.Scopes, "update")
	switch {
	case c.Writes.Enabled && !hasUpdate:
		return []error{fmt.Errorf("ERPGRAPH_WRITES is on but ERP_SCOPES (%s) lacks update", strings.Join(c.Scopes, " "))}
	case !c.Writes.Enabled && hasUpdate:
		return []error{fmt.Errorf("ERP_SCOPES asks for update but ERPGRAPH_WRITES is off: leave update out (least privilege) or turn writes on")}
	}
	return nil
}

// writesComponent is the /readyz entry that says which mode is in force.
func (c Config) writesComponent() server.Component {
	if c.Writes.Enabled {
		return server.Component{Status: server.StatusOK, Detail: "writes enabled: mutations run; the service token has the scopes read update"}
	}
	return server.Component{Status: server.StatusOK, Detail: "read-only: mutations answer WRITES_DISABLED; the service token has the scope read"}
}

// writesMode is the ready log's word for the mode.
func (c Config) writesMode() string {
	if c.Writes.Enabled {
		return "enabled"
	}
	return "read-only"
}
