package app

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"strings"
)

// rawFlag is a string flag that may also be given alone (-playground) when
// its setting is an on/off switch.
type rawFlag struct {
	v      *string
	isBool bool
}

func (f rawFlag) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}
func (f rawFlag) Set(s string) error { *f.v = s; return nil }
func (f rawFlag) IsBoolFlag() bool   { return f.isBool }

// ConfigFromEnv reads the settings from getenv, lets flags in args override
// them, applies the defaults (which depend on dev mode) and validates the
// result. It reports every problem at once. -h returns flag.ErrHelp after
// printing the settings to stderr. `erpgraph serve` uses NewFromEnv, which
// validates (and reads the TLS pair and the manifest) once, not here and in
// New again.
func ConfigFromEnv(getenv func(string) string, args []string) (Config, error) {
	cfg, problems, err := parseEnv(getenv, args)
	if err != nil {
		return Config{}, err
	}
	cfg, _, err = cfg.resolve(problems...)
	return cfg, err
}

// parseEnv reads the settings into a Config without defaults or checks. It
// returns the values that do not parse as problems, and a bad command line
// as the flag package reports it.
func parseEnv(getenv func(string) string, args []string) (Config, []error, error) {
	raw := make([]string, len(registry))
	fs := flag.NewFlagSet("erpgraph serve", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	for i, s := range registry {
		raw[i] = getenv(s.env)
		if s.flag != "" {
			fs.Var(rawFlag{v: &raw[i], isBool: s.boolean}, s.flag, s.help+" ($"+s.env+")")
		}
	}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: erpgraph serve [flags]\n\nEvery flag has an environment variable; flags win.")
		for _, s := range registry {
			name := "(env only)"
			if s.flag != "" {
				name = "-" + s.flag
			}
			def := ""
			if s.def != "" {
				def = " (default " + s.def + ")"
			}
			fmt.Fprintf(fs.Output(), "  %-32s %-22s %s%s\n", s.env, name, s.help, def)
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	if fs.NArg() > 0 {
		return Config{}, nil, fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	for i, s := range registry {
		if !s.raw {
			raw[i] = strings.TrimSpace(raw[i])
		}
	}

	var cfg Config
	// The mode decides some defaults, so the URLs are read first.
	for i, s := range registry {
		if s.env == "ERP_INSTANCE_URL" || s.env == "ERP_IDENTITY_URL" || s.env == "ERP_ODATA_URL" {
			_ = s.parse(&cfg, raw[i]) // plain text
		}
	}
	dev := cfg.Dev()
	var errs []error
	for i, s := range registry {
		if s.modeDefault != nil {
			s.modeDefault(&cfg, dev)
		}
		v := raw[i]
		if v == "" {
			continue
		}
		if err := s.parse(&cfg, v); err != nil {
			shown := fmt.Sprintf("%q", v)
			if s.secret {
				shown = "(secret)"
			}
			errs = append(errs, about(s.env+"="+shown+flagNote(s), err)...)
			continue
		}
		if s.devOnly && !dev {
			errs = append(errs, fmt.Errorf("%s applies only in dev mode (no ERP.net instance configured)%s", s.env, flagNote(s)))
		}
	}
	return cfg, errs, nil
}

// flagNote names the flag of a setting after its variable: " (-addr)".
func flagNote(s setting) string {
	if s.flag == "" {
		return ""
	}
	return " (-" + s.flag + ")"
}

// logKey is the setting's name in the ready log: its flag in snake case.
func (s setting) logKey() string {
	name := s.flag
	name = cmp.Or(name, strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s.env, "ERPGRAPH_"), "ERP_")))
	return strings.ReplaceAll(name, "-", "_")
}

// list splits a comma- or space-separated value.
func list(s string) []string {
	if f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }); len(f) > 0 {
		return f
	}
	return nil // unset, not "an empty list": defaults apply
}

func nonEmpty(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseSwitch reads on/off switches: on/off, true/false, yes/no, 1/0.
func parseSwitch(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		return true, true
	case "off", "false", "no", "0":
		return false, true
	}
	return false, false
}
