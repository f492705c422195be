// Package deploy_test checks the deployment files in deploy/ against the
// program: the Grafana dashboard asks only for metrics erpgraph exports, in
// valid PromQL, and the Kubernetes manifests decode strictly and match
// erpgraph's settings.
package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/internal/testbin"
	"github.com/erpgraph/erpgraph/metrics"
)

type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var metricRe = regexp.MustCompile(`erpgraph_[a-z0-9_]+`)

// The dashboard's queries name only metrics erpgraph declares, and show the
// ERP.net session budget: requests per minute against 600, in flight, the
// queue, 429/503 and the breaker.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "erpgraph.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/erpgraph.json: %v", err)
	}
	known := metrics.Names()
	var exprs []string
	used := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			for _, name := range metricRe.FindAllString(tg.Expr, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(known, s) {
						base = s
					}
				}
				if !slices.Contains(known, base) {
					t.Errorf("panel %q asks for %s, which erpgraph does not export", p.Title, name)
				}
				used[base] = true
			}
		}
	}
	for _, want := range []string{"erpgraph_erp_upstream_requests_total", "erpgraph_erp_session_requests_per_minute_limit",
		"erpgraph_erp_in_flight_requests", "erpgraph_erp_queued_calls", "erpgraph_erp_queue_wait_seconds",
		"erpgraph_erp_error_responses_total", "erpgraph_erp_breaker_state"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	if !strings.Contains(string(b), "vector(600)") {
		t.Error("the dashboard lacks ERP.net's 600 requests/min line")
	}
	promtoolRules(t, exprs)
}

// promtoolRules parses the queries with `promtool check rules` (each as a
// recording rule; Grafana's $job becomes a regex).
func promtoolRules(t *testing.T, exprs []string) {
	t.Helper()
	promtool := testbin.Path(t, "promtool", "prometheus")
	var sb strings.Builder
	sb.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for i, e := range exprs {
		e = strings.ReplaceAll(e, "$job", ".*")
		q, _ := json.Marshal(e) // a JSON string is a YAML string
		fmt.Fprintf(&sb, "  - record: dashboard:query%d\n    expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
