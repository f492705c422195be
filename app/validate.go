package app

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/server"
)

// loaded is what the checks read from files, so that New uses what was
// checked and reads each file once.
type loaded struct {
	cert    *tls.Certificate        // nil without TLS
	trusted *graph.TrustedDocuments // nil without a manifest
}

// resolve applies the defaults and checks the configuration in force: every
// row's check, then the rules that tie settings together. It is the one
// place where validation happens and files are read. problems (from parsing)
// are reported along with its own, all at once, as a *ConfigError.
func (c Config) resolve(problems ...error) (Config, *loaded, error) {
	c = c.WithDefaults()
	l := &loaded{}
	errs := problems
	for _, s := range registry {
		if s.check == nil {
			continue
		}
		if err := s.check(c, l); err != nil {
			errs = append(errs, about(s.name(), err)...)
		}
	}
	for _, rule := range rules {
		errs = append(errs, rule(c, l)...)
	}
	if len(errs) > 0 {
		return c, nil, newConfigError(errs)
	}
	return c, l, nil
}

// rules are the checks that involve several settings.
var rules = []func(c Config, l *loaded) []error{
	// The service application: erpsim's in dev mode unless both are given;
	// erpclient owns the rules for instance URLs, client id and secret.
	func(c Config, _ *loaded) []error {
		if c.Dev() {
			if c.ClientID == "" || c.ClientSecret == "" {
				return []error{fmt.Errorf("dev mode: %s and %s go together (or leave both unset for erpsim's %s)",
					named("ERP_CLIENT_ID"), secretName, fixture.BFFClientID)}
			}
			return nil
		}
		ec := erpclient.Config{InstanceURL: c.InstanceURL, IdentityURL: c.IdentityURL, ODataURL: c.ODataURL,
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes}
		return erpclientProblems(ec.Validate())
	},
	func(c Config, _ *loaded) []error {
		op, wt := cmp.Or(c.OperationTimeout, server.DefaultOperationTimeout), cmp.Or(c.WriteTimeout, server.DefaultWriteTimeout)
		if op >= wt {
			return []error{fmt.Errorf("ERPGRAPH_OPERATION_TIMEOUT=%v must be shorter than ERPGRAPH_WRITE_TIMEOUT=%v (the answer must still be written; -operation-timeout, -write-timeout)", op, wt)}
		}
		return nil
	},
	func(c Config, _ *loaded) []error {
		if c.TrustedDocumentsOnly && c.TrustedDocuments == "" {
			return []error{errors.New("ERPGRAPH_TRUSTED_DOCUMENTS_ONLY is on (-trusted-documents-only) but ERPGRAPH_TRUSTED_DOCUMENTS (-trusted-documents) names no manifest")}
		}
		return nil
	},
	func(c Config, l *loaded) []error {
		switch {
		case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
			return []error{fmt.Errorf("%s and %s go together", named("ERPGRAPH_TLS_CERT_FILE"), named("ERPGRAPH_TLS_KEY_FILE"))}
		case c.TLSCertFile != "":
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return []error{fmt.Errorf("%s, %s: %w", named("ERPGRAPH_TLS_CERT_FILE"), named("ERPGRAPH_TLS_KEY_FILE"), err)}
			}
			l.cert = &cert
		}
		return nil
	},
}

// secretName names both ways of giving the client secret.
var secretName = "ERP_CLIENT_SECRET or " + named("ERP_CLIENT_SECRET_FILE")

// erpclientProblems names the settings behind erpclient's problems.
func erpclientProblems(err error) []error {
	if err == nil {
		return nil
	}
	settingOf := map[string]string{
		"InstanceURL": named("ERP_INSTANCE_URL"), "IdentityURL": named("ERP_IDENTITY_URL"), "ODataURL": named("ERP_ODATA_URL"),
		"ClientID": named("ERP_CLIENT_ID"), "ClientSecret": secretName, "Scopes": named("ERP_SCOPES"),
	}
	var out []error
	for _, p := range newConfigError([]error{err}).Problems {
		var fe *erpclient.FieldError
		if errors.As(p, &fe) && settingOf[fe.Field] != "" {
			p = fmt.Errorf("%s: %w", settingOf[fe.Field], p)
		}
		out = append(out, p)
	}
	return out
}

// about puts name before each of err's problems.
func about(name string, err error) []error {
	var out []error
	for _, p := range newConfigError([]error{err}).Problems {
		out = append(out, fmt.Errorf("%s: %w", name, p))
	}
	return out
}

// newConfigError flattens joined errors (erpclient's own validation joins
// its problems) so that each problem is one line.
func newConfigError(errs []error) *ConfigError {
	var flat []error
	var walk func(error)
	walk = func(err error) {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				walk(e)
			}
			return
		}
		// "erpclient: invalid configuration: %w" around a join: list the join's items.
		if inner := errors.Unwrap(err); inner != nil {
			if _, ok := inner.(interface{ Unwrap() []error }); ok {
				walk(inner)
				return
			}
		}
		flat = append(flat, err)
	}
	for _, e := range errs {
		walk(e)
	}
	return &ConfigError{Problems: flat}
}

// ConfigError lists every problem of a configuration, one per line.
type ConfigError struct{ Problems []error }

func (e *ConfigError) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, "  - "+strings.ReplaceAll(p.Error(), "\n", "\n    "))
	}
	return "invalid configuration:\n" + strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.Problems }
