package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// simConfig is the configuration of `erpgraph sim`.
type simConfig struct {
	addr          string
	publicURL     string
	scale         int
	users         int
	latency       time.Duration
	partLatency   time.Duration
	licenses      int
	rpm           int
	unlimited     bool
	tokenLifetime time.Duration
	churn         time.Duration
}

// parseSimConfig reads the environment first and lets flags override it;
// every invalid value is reported at once.
func parseSimConfig(args []string, out io.Writer, getenv func(string) string) (simConfig, error) {
	var errs []error
	envInt := func(name string, def int) int {
		return envValue(getenv, name, def, strconv.Atoi, "a whole number", &errs)
	}
	envDur := func(name string, def time.Duration) time.Duration {
		return envValue(getenv, name, def, time.ParseDuration, "a duration (like 20ms)", &errs)
	}
	envBool := func(name string) bool {
		return envValue(getenv, name, false, strconv.ParseBool, "true or false", &errs)
	}
	envStr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}

	var c simConfig
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", envStr("ERPSIM_ADDR", "127.0.0.1:8089"), "listen address (ERPSIM_ADDR)")
	fs.StringVar(&c.publicURL, "public-url", envStr("ERPSIM_PUBLIC_URL", ""), "externally visible base URL, default http://<addr> (ERPSIM_PUBLIC_URL)")
	fs.IntVar(&c.scale, "scale", envInt("ERPSIM_SCALE", 1), "demo data multiplier: 1 = 1,000 sales orders, 100 = 100,000 (ERPSIM_SCALE)")
	fs.IntVar(&c.users, "users", envInt("ERPSIM_USERS", 0), "generated portal users portal.user001, ... (password demo), each with a customer of their own (ERPSIM_USERS)")
	fs.DurationVar(&c.latency, "latency", envDur("ERPSIM_LATENCY", 0), "simulated processing time per Domain API request (ERPSIM_LATENCY)")
	fs.DurationVar(&c.partLatency, "part-latency", envDur("ERPSIM_PART_LATENCY", 0), "simulated processing time per $batch part (ERPSIM_PART_LATENCY)")
	fs.IntVar(&c.licenses, "licenses", envInt("ERPSIM_LICENSES", 0), "concurrent sessions (licenses); 0 = ERP.net default 10, -1 = unlimited (ERPSIM_LICENSES)")
	fs.IntVar(&c.rpm, "rpm", envInt("ERPSIM_RPM", 0), "requests per minute per session; 0 = ERP.net default 600, -1 = unlimited (ERPSIM_RPM)")
	fs.BoolVar(&c.unlimited, "unlimited", envBool("ERPSIM_UNLIMITED"), "lift every session limit, for load tests (ERPSIM_UNLIMITED)")
	fs.DurationVar(&c.churn, "churn", envDur("ERPSIM_CHURN", 0), "change one product and its stock, and add or delete a product, every interval; 0 = never (ERPSIM_CHURN)")
	fs.DurationVar(&c.tokenLifetime, "token-lifetime", envDur("ERPSIM_TOKEN_LIFETIME", time.Hour), "access-token lifetime (ERPSIM_TOKEN_LIFETIME)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if c.scale < 1 || c.scale > 1000 {
		errs = append(errs, fmt.Errorf("scale %d: must be between 1 and 1000", c.scale))
	}
	if c.users < 0 || c.users > fixture.MaxGeneratedUsers {
		errs = append(errs, fmt.Errorf("users %d: must be between 0 and %d", c.users, fixture.MaxGeneratedUsers))
	}
	if c.latency < 0 || c.partLatency < 0 || c.churn < 0 {
		errs = append(errs, errors.New("latencies and churn must not be negative"))
	}
	if c.licenses < -1 || c.rpm < -1 {
		errs = append(errs, errors.New("licenses and rpm must be -1 (unlimited), 0 (default) or positive"))
	}
	if c.tokenLifetime < time.Minute {
		errs = append(errs, fmt.Errorf("token lifetime %s: must be at least 1m", c.tokenLifetime))
	}
	if c.publicURL != "" && !strings.HasPrefix(c.publicURL, "http://") && !strings.HasPrefix(c.publicURL, "https://") {
		errs = append(errs, fmt.Errorf("public URL %q: must start with http:// or https://", c.publicURL))
	}
	return c, errors.Join(errs...)
}

// envValue parses the environment variable name, or returns def when it is
// unset; a value that does not parse is added to errs.
func envValue[T any](getenv func(string) string, name string, def T, parse func(string) (T, error), what string, errs *[]error) T {
	v := getenv(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s=%q is not %s", name, v, what))
		return def
	}
	return x
}

func (c simConfig) limits() erpsim.Limits {
	if c.unlimited {
		return erpsim.Unlimited()
	}
	return erpsim.Limits{Licenses: c.licenses, RequestsPerMinute: c.rpm}
}

// runSim runs erpsim alone until ctx is done (Ctrl-C).
func runSim(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cfg, err := parseSimConfig(args, stdout, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("sim: %w", err)
	}
	start := time.Now()
	sim, err := erpsim.Start(ctx, erpsim.Options{
		Addr: cfg.addr, PublicURL: cfg.publicURL, Scale: cfg.scale, Users: cfg.users,
		TokenLifetime: cfg.tokenLifetime, Limits: cfg.limits(),
	})
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	sim.SetLatency(cfg.latency, cfg.partLatency)
	go sim.Churn(ctx, cfg.churn)
	printSimBanner(stdout, sim, cfg, time.Since(start))
	<-ctx.Done()
	if err := sim.Close(); err != nil {
		return fmt.Errorf("sim: close: %w", err)
	}
	fmt.Fprintln(stdout, "erpsim: stopped")
	return nil
}

// printSimBanner tells a developer everything needed to use the instance.
func printSimBanner(w io.Writer, sim *erpsim.Sim, cfg simConfig, took time.Duration) {
	fmt.Fprintf(w, "erpsim: ERP.net instance emulator, database %s, data scale %d (started in %s)\n\n",
		fixture.DBName, cfg.scale, took.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  base URL\t%s\n", sim.URL())
	fmt.Fprintf(tw, "  auto-discovery\t%s/sys/auto-discovery\n", sim.URL())
	fmt.Fprintf(tw, "  OIDC discovery\t%s/.well-known/openid-configuration\n", sim.IdentityURL())
	fmt.Fprintf(tw, "  OData root\t%s\n", sim.ODataURL())
	fmt.Fprintf(tw, "  limits\t%s\n", describeLimits(cfg))
	if cfg.latency > 0 || cfg.partLatency > 0 {
		fmt.Fprintf(tw, "  latency\t%s per request, %s per $batch part\n", cfg.latency, cfg.partLatency)
	}
	_ = tw.Flush()

	fmt.Fprintln(w, "\nTrusted applications:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  client id\ttype\tsecret\tscopes\tclient credentials\tsigns in")
	for _, a := range fixture.Apps() {
		secret, cc, who := "-", "-", signsIn(a)
		if a.Secret != "" {
			secret = a.Secret
		}
		if a.SystemUserAllowed {
			cc = "as " + a.SystemUserLogin
		}
		if !a.IsEnabled {
			who = "disabled"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", a.ClientID, a.ClientType, secret, a.Scope, cc, who)
	}
	_ = tw.Flush()
	for _, a := range fixture.Apps() {
		if a.IsEnabled && len(a.RedirectURIs) > 0 {
			fmt.Fprintf(w, "  %s redirect URIs: %s\n", a.ClientID, strings.Join(a.RedirectURIs, " "))
		}
	}

	fmt.Fprintf(w, "\nDemo users (password %q):\n", fixture.DemoPassword)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, u := range fixture.Users() {
		if u.Password == "" {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", u.Login, u.Name, u.UserType, describeAccess(u))
	}
	_ = tw.Flush()
	if n := sim.Users(); n > 0 {
		fmt.Fprintf(w, "  and %d generated portal users %s ... %s, each with a customer of their own (mostly Owner)\n",
			n, fixture.GeneratedLogin(1), fixture.GeneratedLogin(n))
	}
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}

func describeLimits(cfg simConfig) string {
	if cfg.unlimited {
		return "unlimited"
	}
	l := cfg.limits()
	n := func(v, def int) string {
		switch v {
		case -1:
			return "unlimited"
		case 0:
			return strconv.Itoa(def)
		}
		return strconv.Itoa(v)
	}
	return fmt.Sprintf("per session 1 request in flight + 5 queued, %s requests/min; %s licenses",
		n(l.RequestsPerMinute, 600), n(l.Licenses, 10))
}

func signsIn(a fixture.App) string {
	var who []string
	if a.ImpersonateAsInternalUserAllowed {
		who = append(who, "internal")
	}
	if a.ImpersonateAsCommunityUserAllowed {
		who = append(who, "external")
	}
	if len(who) == 0 {
		return "nobody"
	}
	return strings.Join(who, "+") + " users"
}

// describeAccess says what a demo user may see through erpgraph.
func describeAccess(u fixture.User) string {
	if u.UserType == fixture.InternalUser {
		if u.IsAdmin {
			return "internal administrator"
		}
		return "internal user"
	}
	var parts []string
	for _, a := range fixture.Accesses() {
		if a.UserLogin != u.Login {
			continue
		}
		days := "all history"
		if a.DaysBackAccess != nil {
			days = fmt.Sprintf("%d days back", *a.DaysBackAccess)
		}
		parts = append(parts, fmt.Sprintf("%s at customer %d (%s)", a.Role, a.CustomerN, days))
	}
	if len(parts) == 0 {
		return "no customer access"
	}
	return strings.Join(parts, "; ")
}
