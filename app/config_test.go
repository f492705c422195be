package app_test

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigFromEnv_DevDefaults(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Dev() || cfg.Addr != app.DefaultAddr || cfg.ClientID != fixture.BFFClientID || cfg.ClientSecret != fixture.BFFSecret {
		t.Errorf("dev config = %+v", cfg)
	}
	if !cfg.Playground || !cfg.Introspection || cfg.AllowInternalUsers {
		t.Errorf("dev switches: playground %v, introspection %v, internal users %v", cfg.Playground, cfg.Introspection, cfg.AllowInternalUsers)
	}
	if want := []string{fixture.BFFClientID, fixture.PlaygroundClientID}; !reflect.DeepEqual(cfg.TrustedClientIDs, want) {
		t.Errorf("trusted = %v, want %v", cfg.TrustedClientIDs, want)
	}
	if !reflect.DeepEqual(cfg.Scopes, []string{"read"}) || cfg.ShutdownGrace != app.DefaultShutdownGrace || cfg.SimScale != 1 || cfg.LogLevel != slog.LevelInfo ||
		cfg.GCPercent != app.DefaultGCPercent {
		t.Errorf("defaults: scopes %v, grace %v, scale %d, level %v, GOGC %d", cfg.Scopes, cfg.ShutdownGrace, cfg.SimScale, cfg.LogLevel, cfg.GCPercent)
	}
}

func TestConfigFromEnv_Instance(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret with spaces \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"ERP_INSTANCE_URL":            "https://demo.my.erp.net",
		"ERP_CLIENT_ID":               "com.example/portal-bff",
		"ERP_CLIENT_SECRET_FILE":      secretFile,
		"ERP_SCOPES":                  "read, update",
		"ERPGRAPH_WRITES":             "on",
		"ERPGRAPH_TRUSTED_CLIENT_IDS": "com.example/portal-spa, com.example/mobile",
		"ERPGRAPH_AUDIENCE":           "DomainAPI",
		"ERPGRAPH_LOG_LEVEL":          "debug",
		"ERPGRAPH_SHUTDOWN_GRACE":     "30s",
		"ERPGRAPH_ADDR":               "0.0.0.0:9000",
		"ERPGRAPH_PLAYGROUND":         "off",
		"GOGC":                        "400",
	}
	// Flags win over the environment; a switch flag may stand alone.
	cfg, err := app.ConfigFromEnv(envOf(env), []string{"-addr", "127.0.0.1:9100", "-playground", "-allow-internal-users=yes"})
	if err != nil {
		t.Fatal(err)
	}
	want := app.Config{
		Addr: "127.0.0.1:9100", InstanceURL: "https://demo.my.erp.net",
		ClientID: "com.example/portal-bff", ClientSecret: "s3cret with spaces ", Scopes: []string{"read", "update"},
		TrustedClientIDs: []string{"com.example/portal-spa", "com.example/mobile"}, Audience: "DomainAPI",
		AllowInternalUsers: true, Playground: true, PlaygroundClientID: fixture.PlaygroundClientID,
		LogLevel: slog.LevelDebug, GCPercent: 400, ShutdownGrace: 30 * time.Second, SimScale: 1, Writes: app.WritesConfig{Enabled: true},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", cfg, want)
	}
	if cfg.Dev() || cfg.Introspection {
		t.Errorf("dev %v, introspection %v with an instance configured", cfg.Dev(), cfg.Introspection)
	}
}

// Every problem is reported in one error, so an operator fixes them in one go.
func TestConfigFromEnv_AllErrorsAtOnce(t *testing.T) {
	env := map[string]string{
		"ERP_IDENTITY_URL":              "ftp://id.example",
		"ERP_CLIENT_SECRET":             "x",
		"ERP_CLIENT_SECRET_FILE":        "/nonexistent",
		"ERPGRAPH_ADDR":                 "no-port",
		"ERPGRAPH_PLAYGROUND":           "maybe",
		"ERPGRAPH_INTROSPECTION":        "sometimes",
		"ERPGRAPH_ALLOW_INTERNAL_USERS": "2",
		"ERPGRAPH_LOG_LEVEL":            "loud",
		"ERPGRAPH_SHUTDOWN_GRACE":       "soon",
		"ERPSIM_SCALE":                  "10",
	}
	_, err := app.ConfigFromEnv(envOf(env), nil)
	if err == nil {
		t.Fatal("ConfigFromEnv accepted a broken configuration")
	}
	var ce *app.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not a *ConfigError", err)
	}
	for _, p := range ce.Problems {
		if strings.Contains(p.Error(), "\n") || strings.Contains(p.Error(), "invalid configuration") {
			t.Errorf("problem %q is not one plain line", p)
		}
	}
	if len(ce.Problems) < 11 {
		t.Errorf("%d problems, want every one of them:\n%v", len(ce.Problems), err)
	}
	for _, want := range []string{
		"ERP_CLIENT_SECRET and ERP_CLIENT_SECRET_FILE are both set",
		"ERPGRAPH_ADDR", "ERPGRAPH_PLAYGROUND=\"maybe\"", "ERPGRAPH_INTROSPECTION", "ERPGRAPH_ALLOW_INTERNAL_USERS",
		"ERPGRAPH_LOG_LEVEL", "ERPGRAPH_SHUTDOWN_GRACE", "ERPSIM_SCALE applies only in dev mode",
		"OData URL is missing", "client id", // from erpclient's rules
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestConfigFromEnv_Flags(t *testing.T) {
	if _, err := app.ConfigFromEnv(envOf(nil), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
	if _, err := app.ConfigFromEnv(envOf(nil), []string{"-no-such-flag"}); err == nil {
		t.Error("unknown flag accepted")
	}
	if _, err := app.ConfigFromEnv(envOf(nil), []string{"extra"}); err == nil {
		t.Error("stray argument accepted")
	}
	// In dev mode a client id without its secret is a mistake, not erpsim's app.
	if _, err := app.ConfigFromEnv(envOf(map[string]string{"ERP_CLIENT_ID": "com.example/x"}), nil); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("dev mode with a client id and no secret: %v", err)
	}
}

func TestSettings_CoverEveryVariable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range app.Settings() {
		if seen[s.Env] || s.Help == "" {
			t.Errorf("setting %+v repeated or undocumented", s)
		}
		seen[s.Env] = true
	}
	for _, env := range []string{"ERPGRAPH_ADDR", "ERP_INSTANCE_URL", "ERP_IDENTITY_URL", "ERP_ODATA_URL", "ERP_CLIENT_ID",
		"ERP_CLIENT_SECRET", "ERP_CLIENT_SECRET_FILE", "ERP_SCOPES", "ERPGRAPH_TRUSTED_CLIENT_IDS", "ERPGRAPH_AUDIENCE",
		"ERPGRAPH_ALLOW_INTERNAL_USERS", "ERPGRAPH_PLAYGROUND", "ERPGRAPH_PLAYGROUND_CLIENT_ID", "ERPGRAPH_INTROSPECTION",
		"ERPGRAPH_LOG_LEVEL", "ERPGRAPH_SHUTDOWN_GRACE", "ERPSIM_SCALE", "ERPSIM_USERS", "ERPGRAPH_MAX_BODY_BYTES", "ERPGRAPH_OPERATION_TIMEOUT",
		"ERPGRAPH_READ_HEADER_TIMEOUT", "ERPGRAPH_READ_TIMEOUT", "ERPGRAPH_WRITE_TIMEOUT", "ERPGRAPH_IDLE_TIMEOUT",
		"ERPGRAPH_RATE_LIMIT", "ERPGRAPH_RATE_BURST", "ERPGRAPH_ANON_RATE_LIMIT", "ERPGRAPH_ANON_RATE_BURST",
		"ERPGRAPH_MAX_CONCURRENT", "ERPGRAPH_CONCURRENCY_WAIT", "ERPGRAPH_TRUSTED_PROXIES", "ERPGRAPH_CORS_ORIGINS",
		"ERPGRAPH_CORS_MAX_AGE", "ERPGRAPH_CSRF_HEADERS", "ERPGRAPH_AUDIT_LOG", "ERPGRAPH_AUDIT_VARIABLES",
		"ERPGRAPH_TLS_CERT_FILE", "ERPGRAPH_TLS_KEY_FILE"} {
		if !seen[env] {
			t.Errorf("Settings() lacks %s", env)
		}
	}
}

func TestConfigFromEnv_QueryLimitsAndPersistedQueries(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(manifest, []byte(`{"abc":"{ me { login } }"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"ERPGRAPH_MAX_TOKENS": "2000", "ERPGRAPH_MAX_DEPTH": "8", "ERPGRAPH_MAX_ALIASES": "off",
		"ERPGRAPH_MAX_ROOT_FIELDS": "5", "ERPGRAPH_MAX_DIRECTIVES": "20", "ERPGRAPH_MAX_COST": "10000",
		"ERPGRAPH_APQ_CACHE_SIZE": "off", "ERPGRAPH_TRUSTED_DOCUMENTS": manifest,
		"ERPGRAPH_TRUSTED_DOCUMENTS_ONLY": "on", "ERPGRAPH_CACHE_MAX_AGE": "5m",
	}
	cfg, err := app.ConfigFromEnv(envOf(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := graph.Limits{MaxTokens: 2000, MaxDepth: 8, MaxAliases: -1, MaxRootFields: 5, MaxDirectives: 20, MaxCost: 10000}
	if cfg.QueryLimits != want {
		t.Errorf("limits %+v, want %+v", cfg.QueryLimits, want)
	}
	if cfg.APQCacheSize != -1 || cfg.TrustedDocuments != manifest || !cfg.TrustedDocumentsOnly || cfg.CacheMaxAge != 5*time.Minute {
		t.Errorf("persisted queries: apq %d, manifest %q, only %v, max-age %v", cfg.APQCacheSize, cfg.TrustedDocuments, cfg.TrustedDocumentsOnly, cfg.CacheMaxAge)
	}

	// Unset: the defaults apply in graph (zero values).
	cfg, err = app.ConfigFromEnv(envOf(nil), nil)
	if err != nil || cfg.QueryLimits != (graph.Limits{}) || cfg.APQCacheSize != 0 || cfg.TrustedDocumentsOnly {
		t.Errorf("defaults: %+v, %v", cfg.QueryLimits, err)
	}

	bad := map[string]string{
		"ERPGRAPH_MAX_DEPTH": "deep", "ERPGRAPH_MAX_COST": "-5", "ERPGRAPH_TRUSTED_DOCUMENTS_ONLY": "on",
		"ERPGRAPH_CACHE_MAX_AGE": "soon",
	}
	_, err = app.ConfigFromEnv(envOf(bad), nil)
	for _, want := range []string{"ERPGRAPH_MAX_DEPTH", "ERPGRAPH_MAX_COST", "ERPGRAPH_TRUSTED_DOCUMENTS_ONLY is on", "ERPGRAPH_CACHE_MAX_AGE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	broken := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(broken, []byte(`[1,2]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_TRUSTED_DOCUMENTS": broken}), nil); err == nil ||
		!strings.Contains(err.Error(), "ERPGRAPH_TRUSTED_DOCUMENTS") {
		t.Errorf("a broken manifest: %v", err)
	}
}

func TestConfigFromEnv_Scheduler(t *testing.T) {
	env := map[string]string{
		"ERP_MAX_IN_FLIGHT":       "2",
		"ERP_REQUESTS_PER_MINUTE": "1100",
		"ERP_BATCH_PARTS":         "50",
		"ERP_BREAKER_THRESHOLD":   "off",
		"ERP_BREAKER_COOLDOWN":    "30s",
		"ERP_MAX_QUEUE_PER_USER":  "off",
	}
	cfg, err := app.ConfigFromEnv(envOf(env), []string{"-erp-batch-parts", "40"})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Scheduler
	if got.MaxInFlight != 2 || got.RequestsPerMinute != 1100 || got.MaxBatchParts != 40 || got.BreakerThreshold != -1 || got.BreakerCooldown != 30*time.Second || got.MaxQueuePerCaller != -1 {
		t.Errorf("Scheduler = %+v", got)
	}

	_, err = app.ConfigFromEnv(envOf(map[string]string{
		"ERP_MAX_IN_FLIGHT": "0", "ERP_REQUESTS_PER_MINUTE": "lots", "ERP_BATCH_PARTS": "off",
	}), nil)
	for _, want := range []string{"ERP_MAX_IN_FLIGHT", "ERP_REQUESTS_PER_MINUTE", "ERP_BATCH_PARTS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestConfigFromEnv_SimUsers(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(map[string]string{"ERPSIM_USERS": "5"}), nil)
	if err != nil || cfg.SimUsers != 5 {
		t.Errorf("ERPSIM_USERS=5: %d, %v", cfg.SimUsers, err)
	}
	if cfg, err := app.ConfigFromEnv(envOf(map[string]string{"ERPSIM_USERS": "5"}), []string{"-sim-users", "7"}); err != nil || cfg.SimUsers != 7 {
		t.Errorf("-sim-users 7: %d, %v", cfg.SimUsers, err)
	}
	for _, v := range []string{"many", "-1", "10000"} {
		if _, err := app.ConfigFromEnv(envOf(map[string]string{"ERPSIM_USERS": v}), nil); err == nil || !strings.Contains(err.Error(), "ERPSIM_USERS") {
			t.Errorf("ERPSIM_USERS=%s: %v", v, err)
		}
	}
}

// The ready log shows the values in force: a limit left at its default shows
// the default, one turned off shows "off" (not 0, which reads as "no limit").
func TestConfig_LogValueShowsValuesInForce(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_MAX_ALIASES": "off", "ERPGRAPH_RATE_BURST": "50"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range cfg.LogValue().Group() {
		got[a.Key] = a.Value.String()
	}
	for key, want := range map[string]string{
		"rate_limit": "10", "rate_burst": "50", "anon_rate_limit": "2", "max_concurrent": "6", "max_depth": "6",
		"max_aliases": "off", "max_cost": "5000", "apq_cache_size": "1000", "erp_max_in_flight": "1",
		"erp_requests_per_minute": "540", "operation_timeout": "15s", "max_body_bytes": "1048576",
		"csrf_headers": "X-Apollo-Operation-Name,Apollo-Require-Preflight", "client_secret_set": "true",
	} {
		if got[key] != want {
			t.Errorf("ready log %s = %q, want %q", key, got[key], want)
		}
	}
	for key, v := range got {
		if strings.Contains(v, fixture.BFFSecret) {
			t.Errorf("ready log %s shows the secret", key)
		}
	}
}

// A start-up error names the environment variable and its flag, also for
// the client id and the secret (which erpclient's rules report).
func TestConfigFromEnv_ErrorsNameVariableAndFlag(t *testing.T) {
	_, err := app.ConfigFromEnv(envOf(map[string]string{"ERP_INSTANCE_URL": "https://demo.my.erp.net", "ERPGRAPH_MAX_DEPTH": "deep"}), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`ERPGRAPH_MAX_DEPTH="deep" (-max-depth)`,
		"ERP_CLIENT_ID (-client-id): the client id",
		"ERP_CLIENT_SECRET or ERP_CLIENT_SECRET_FILE (-client-secret-file): the client secret is missing",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// erpsim registers the playground application under erpgraph's default id.
func TestDefaultPlaygroundClientID(t *testing.T) {
	if app.DefaultPlaygroundClientID != fixture.PlaygroundClientID {
		t.Errorf("erpgraph's default %q, erpsim's %q", app.DefaultPlaygroundClientID, fixture.PlaygroundClientID)
	}
}
