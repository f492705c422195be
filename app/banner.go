package app

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// roleSees says what an external access role shows, per docs/erpnet.md § Customer external access.
var roleSees = map[string]string{
	fixture.RoleBasic:            "profile, shipments",
	fixture.RoleOrders:           "profile, shipments, orders without prices",
	fixture.RoleOrdersWithPrices: "profile, shipments, orders with prices",
	fixture.RoleOrdersBilling:    "profile, shipments, orders with prices, invoices",
	fixture.RoleAdmin:            "everything",
	fixture.RoleOwner:            "everything",
}

// Banner is the startup text `erpgraph serve` prints: where to go, and in
// dev mode that erpsim runs in-process and who can sign in.
func (a *App) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "erpgraph is listening on %s\n\n", a.url)
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  GraphQL\t%s/graphql\n", a.url)
	if a.cfg.Playground {
		fmt.Fprintf(tw, "  Playground\t%s%s\n", a.url, a.srv.PlaygroundPath())
	} else {
		fmt.Fprintf(tw, "  Playground\toff (ERPGRAPH_PLAYGROUND=on to serve it)\n")
	}
	if a.cfg.StaticDir != "" {
		fmt.Fprintf(tw, "  Frontend\t%s/ (from %s)\n", a.url, a.cfg.StaticDir)
	}
	if a.cfg.Portal {
		fmt.Fprintf(tw, "  Example portal\t%s%s (sign in with the session cookie)\n", a.url, server.PortalPath)
	}
	if a.sessions != nil {
		fmt.Fprintf(tw, "  Sign-in\t%s%s?returnTo=/ (session cookie; callback %s)\n", a.url, a.sessions.Paths().Login, a.sessions.CallbackURL())
	}
	fmt.Fprintf(tw, "  Probes\t%s/healthz, %s/readyz\n", a.url, a.url)
	if m := a.MetricsURL(); m != "" {
		fmt.Fprintf(tw, "  Metrics\t%s\n", m)
	}
	fmt.Fprintf(tw, "  Identity server\t%s\n", a.erp.IdentityURL())
	fmt.Fprintf(tw, "  Domain API\t%s\n", a.erp.ODataURL())
	_ = tw.Flush()
	if a.sim == nil {
		return b.String()
	}

	fmt.Fprintf(&b, "\nDev mode: no ERP.net instance is configured, so erpsim (the ERP.net emulator) runs in-process\n"+
		"at %s with demo data (scale %d). Set ERP_INSTANCE_URL, ERP_CLIENT_ID and ERP_CLIENT_SECRET\n"+
		"to use a real instance.\n", a.sim.URL(), a.cfg.SimScale)
	fmt.Fprintf(&b, "\nDemo sign-ins (password %q; use \"Sign in\" in the playground):\n", fixture.DemoPassword)
	tw = tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	for _, u := range fixture.Users() {
		if u.Password == "" {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.Login, u.Name, a.describeAccess(u))
	}
	_ = tw.Flush()
	if n := a.cfg.SimUsers; n > 0 {
		fmt.Fprintf(&b, "  and %d generated portal users %s ... %s, each with a customer of their own (mostly Owner)\n",
			n, fixture.GeneratedLogin(1), fixture.GeneratedLogin(n))
	}
	tokenCmd := "go run . token anna.petrova"
	if a.sim.URL() != "http://"+DefaultSimAddr {
		tokenCmd = "go run . token -sim " + a.sim.URL() + " anna.petrova"
	}
	fmt.Fprintf(&b, "\nA token for curl:  TOKEN=$(%s)\n", tokenCmd)
	return b.String()
}

// describeAccess says what a demo user sees through erpgraph.
func (a *App) describeAccess(u fixture.User) string {
	if u.UserType == fixture.InternalUser {
		kind := "internal user"
		if u.IsAdmin {
			kind = "internal administrator"
		}
		if a.cfg.AllowInternalUsers {
			return kind + ": allowed (ERPGRAPH_ALLOW_INTERNAL_USERS)"
		}
		return kind + ": refused with FORBIDDEN unless ERPGRAPH_ALLOW_INTERNAL_USERS=on"
	}
	var grants []string
	for _, acc := range fixture.Accesses() {
		if acc.UserLogin != u.Login {
			continue
		}
		window := "all history"
		if acc.DaysBackAccess != nil {
			window = fmt.Sprintf("%d days back", *acc.DaysBackAccess)
		}
		grants = append(grants, fmt.Sprintf("customer %d %s (%s; %s)", acc.CustomerN, acc.Role, roleSees[acc.Role], window))
	}
	if len(grants) == 0 {
		return "external, no customer access: sees empty lists"
	}
	return "external: " + strings.Join(grants, ", ")
}

// demoLogins are the interactive demo users' logins, for the playground hint.
func demoLogins() []string {
	var out []string
	for _, u := range fixture.Users() {
		if u.Password != "" {
			out = append(out, u.Login)
		}
	}
	return out
}
