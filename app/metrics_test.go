package app_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/testbin"
	"github.com/erpgraph/erpgraph/server"
)

// scrape reads the metrics endpoint in the Prometheus text format.
func scrape(t *testing.T, url string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, raw)
	}
	return raw, fams
}

// metricValue is the value of the series of family name whose labels
// include want (a counter, gauge or a histogram's count); -1 when absent.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// With ERPGRAPH_METRICS_ADDR the metrics are served on their own listener:
// HTTP requests and refusals, GraphQL operations, and the ERP.net session
// (upstream requests equal to what erpsim saw, token exchanges, limits,
// breaker). They hold no user id or token, and promtool accepts them.
func TestApp_Metrics(t *testing.T) {
	cfg := devConfig(t)
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.RateLimit = server.RateLimitConfig{UserRate: 0.01, UserBurst: 2}
	a := run(t, cfg)
	if a.MetricsURL() == "" || !strings.Contains(a.Banner(), a.MetricsURL()) {
		t.Fatalf("metrics URL %q not in the banner:\n%s", a.MetricsURL(), a.Banner())
	}
	anna := login(t, a, fixture.OwnerLogin)
	for i := range 2 {
		if got := send(t, nil, newPost(t, a, anna, "application/json", jsonBody(customersQuery, nil))); got.status != http.StatusOK || got.code() != "" {
			t.Fatalf("request %d: status %d, errors %+v", i+1, got.status, got.body.Errors)
		}
	}
	if got := send(t, nil, newPost(t, a, anna, "application/json", jsonBody(customersQuery, nil))); got.status != http.StatusTooManyRequests {
		t.Fatalf("over the burst: status %d", got.status)
	}
	if got := status(t, a.URL()+"/metrics"); got != http.StatusNotFound {
		t.Errorf("GET /metrics on the public port = %d, want 404", got)
	}

	raw, fams := scrape(t, a.MetricsURL())
	sim := a.Sim().Stats()
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"erpgraph_http_requests_total", map[string]string{"route": "/graphql", "method": "POST", "code": "200"}, 2},
		{"erpgraph_http_requests_total", map[string]string{"route": "/graphql", "method": "POST", "code": "429"}, 1},
		{"erpgraph_http_requests_total", map[string]string{"route": "other", "method": "GET", "code": "404"}, 1},
		{"erpgraph_http_request_duration_seconds", map[string]string{"route": "/graphql"}, 3},
		{"erpgraph_http_refusals_total", map[string]string{"reason": "rate"}, 1},
		// from the request record; the refused request never reached GraphQL
		{"erpgraph_graphql_operations_total", map[string]string{"type": "query", "outcome": "OK"}, 2},
		{"erpgraph_graphql_operation_upstream_requests", map[string]string{"type": "query"}, 2},
		{"erpgraph_erp_upstream_requests_total", nil, float64(sim.DomainRequests)},
		{"erpgraph_erp_session_requests_per_minute_limit", nil, 540},
		{"erpgraph_erp_session_in_flight_limit", nil, 1},
		{"erpgraph_erp_breaker_state", map[string]string{"state": "closed"}, 1},
		{"erpgraph_erp_breaker_state", map[string]string{"state": "open"}, 0},
		{"erpgraph_erp_service_token_state", map[string]string{"state": "valid"}, 1},
		{"erpgraph_erp_error_responses_total", map[string]string{"status": "429"}, 0},
		{"erpgraph_erp_queued_calls", nil, 0},
	}
	for _, tt := range tests {
		if got := metricValue(fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if sim.DomainRequests == 0 {
		t.Error("erpsim saw no Domain API request: the test proves nothing about upstream counts")
	}
	if got := metricValue(fams, "erpgraph_erp_token_requests_total", nil); got < 1 {
		t.Errorf("token exchanges = %v, want at least 1", got)
	}
	if got := metricValue(fams, "erpgraph_erp_queue_wait_seconds", nil); got < 1 {
		t.Errorf("queue waits observed = %v, want at least 1", got)
	}
	for _, secret := range []string{anna, strings.Split(anna, ".")[2], fixture.OwnerLogin, fixture.BFFSecret} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the metrics hold %q", secret)
		}
	}
	testbin.PromtoolCheckMetrics(t, raw)
}

// Without ERPGRAPH_METRICS_ADDR nothing listens for metrics.
func TestApp_MetricsOff(t *testing.T) {
	a := run(t, devConfig(t))
	if a.MetricsURL() != "" || strings.Contains(a.Banner(), "Metrics") {
		t.Errorf("metrics on without ERPGRAPH_METRICS_ADDR: %q", a.MetricsURL())
	}
}
