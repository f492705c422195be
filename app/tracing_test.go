package app_test

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/spantest"
)

const tracedDashboard = `query Dashboard($since: Date) {
  salesOrders(first: 20, filter: {documentDate: {ge: $since}}) {
    totalCount
    nodes { id documentNo customer { number party { name } } lines { lineNo product { partNumber name } } invoices { id documentNo } }
  }
}`

// tracedSince is the dashboard's variable: it goes into the OData $filter of
// the upstream read, and must appear in no span.
const tracedSince = "2001-02-03"

// requestSpan waits for the server span of the request whose X-Request-ID is id.
func requestSpan(t *testing.T, rec *spantest.Recorder, id string) (tracetest.SpanStubs, tracetest.SpanStub) {
	t.Helper()
	var server tracetest.SpanStub
	spans := rec.Wait(t, "server span of request "+id, func(spans tracetest.SpanStubs) bool {
		for _, s := range spans {
			if s.SpanKind == trace.SpanKindServer && attr(s.Attributes, "erpgraph.request_id") == id {
				server = s
				return true
			}
		}
		return false
	})
	return spans, server
}

func attr(attrs []attribute.KeyValue, key string) string {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// One dashboard operation, traced into the SDK's in-memory exporter, is one
// trace: the server span, the operation under it, the loaders under the
// operation, the ERP.net requests under the loaders (each after its
// scheduler wait), and the service-token exchange under the ERP.net request
// that needed it. No attribute holds the variable's value, a token or the
// client secret; the log lines and the audit record of the request carry the
// trace id.
func TestApp_TracesDashboard(t *testing.T) {
	rec := spantest.New()
	logs, audit := &syncBuffer{}, &syncBuffer{}
	cfg := devConfig(t)
	cfg.ReadCache.Off = true // every run reads ERP.net
	cfg.Tracing.Exporter = rec
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.AuditLogger = slog.New(slog.NewJSONHandler(audit, nil))
	a := run(t, cfg)
	tok := login(t, a, fixture.OwnerLogin)
	body := jsonBody(tracedDashboard, map[string]any{"since": tracedSince})

	// The first operation resolves the user's access, with the process's first service token.
	first := send(t, nil, newPost(t, a, tok, "application/json", body))
	if first.status != http.StatusOK || first.code() != "" {
		t.Fatalf("dashboard: %d %+v", first.status, first.body.Errors)
	}
	warm, _ := requestSpan(t, rec, first.header.Get("X-Request-ID"))
	byID := index(warm)
	tokens := 0
	for _, s := range warm {
		if s.Name == "erp.token" {
			tokens++
			if p, ok := byID[s.Parent.SpanID()]; !ok || p.SpanKind != trace.SpanKindClient || !strings.HasPrefix(p.Name, "erp ") {
				t.Errorf("token exchange under %q, want an ERP.net request", p.Name)
			}
			if attr(s.Attributes, "erp.token.outcome") != "ok" {
				t.Errorf("token exchange attributes %v", s.Attributes)
			}
		}
	}
	if tokens != 1 {
		t.Errorf("%d token exchange spans in the first operation, want 1: %v", tokens, spantest.Names(warm))
	}

	rec.Reset()
	res := send(t, nil, newPost(t, a, tok, "application/json", body))
	if res.status != http.StatusOK || res.code() != "" {
		t.Fatalf("dashboard: %d %+v", res.status, res.body.Errors)
	}
	id := res.header.Get("X-Request-ID")
	spans, server := requestSpan(t, rec, id)
	byID = index(spans)
	if server.Name != "POST /graphql" || server.Parent.IsValid() {
		t.Errorf("server span %q with parent %v, want POST /graphql at the root", server.Name, server.Parent)
	}
	traceID := server.SpanContext.TraceID()

	var op tracetest.SpanStub
	for _, s := range spans {
		if s.Parent.SpanID() == server.SpanContext.SpanID() && s.Name == "query Dashboard" {
			op = s
		}
	}
	sum := sha256.Sum256([]byte(tracedDashboard))
	if attr(op.Attributes, "graphql.operation.name") != "Dashboard" || attr(op.Attributes, "graphql.operation.type") != "query" ||
		attr(op.Attributes, "erpgraph.graphql.document_sha256") != hex.EncodeToString(sum[:]) || attr(op.Attributes, "erpgraph.outcome") != "OK" {
		t.Errorf("operation span %q attributes %v", op.Name, op.Attributes)
	}
	// a loader hangs under the operation or under another loader that started it (customers start their parties)
	underOp := func(s tracetest.SpanStub) bool {
		for p, ok := byID[s.Parent.SpanID()]; ok; p, ok = byID[p.Parent.SpanID()] {
			if p.SpanContext.SpanID() == op.SpanContext.SpanID() {
				return true
			}
			if !strings.HasPrefix(p.Name, "loader ") {
				return false
			}
		}
		return false
	}
	loaders, upstreamUnderLoader, waits := 0, 0, 0
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q is in trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
		parent := byID[s.Parent.SpanID()]
		switch {
		case strings.HasPrefix(s.Name, "loader "):
			loaders++
			if !underOp(s) || attr(s.Attributes, "erp.entity_set") == "" || attr(s.Attributes, "loader.keys") == "" {
				t.Errorf("loader span %q under %q, attributes %v", s.Name, parent.Name, s.Attributes)
			}
		case s.SpanKind == trace.SpanKindClient && strings.HasPrefix(s.Name, "erp "):
			if attr(s.Attributes, "http.response.status_code") != "200" || attr(s.Attributes, "erp.batch.parts") == "" {
				t.Errorf("ERP.net request span %q attributes %v", s.Name, s.Attributes)
			}
			if strings.HasPrefix(parent.Name, "loader ") {
				upstreamUnderLoader++
			} else if parent.SpanContext.SpanID() != op.SpanContext.SpanID() {
				t.Errorf("ERP.net request span %q under %q, want a loader or the operation", s.Name, parent.Name)
			}
		case s.Name == "erp.queue":
			waits++
			if parent.SpanContext.SpanID() != op.SpanContext.SpanID() && !strings.HasPrefix(parent.Name, "loader ") {
				t.Errorf("scheduler wait under %q", parent.Name)
			}
		}
	}
	if loaders == 0 || upstreamUnderLoader == 0 || waits == 0 {
		t.Errorf("%d loader spans, %d ERP.net requests under loaders, %d scheduler waits; spans: %v", loaders, upstreamUnderLoader, waits, spantest.Names(spans))
	}
	secrets := []string{tracedSince, tok, fixture.BFFSecret, "eyJ", "Bearer"}
	for _, s := range append(warm, spans...) {
		all := append([]attribute.KeyValue{}, s.Attributes...)
		for _, e := range s.Events {
			all = append(all, e.Attributes...)
		}
		for _, kv := range all {
			for _, secret := range secrets {
				if strings.Contains(kv.Value.Emit(), secret) {
					t.Errorf("span %q attribute %s = %q holds %q", s.Name, kv.Key, kv.Value.Emit(), secret)
				}
			}
		}
	}

	lines := 0
	for _, r := range logs.records(t) {
		if r["request_id"] == id {
			lines++
			if r["trace_id"] != traceID.String() {
				t.Errorf("log line %q of the request has trace_id %v, want %s", r["msg"], r["trace_id"], traceID)
			}
		}
	}
	if lines == 0 {
		t.Error("no log line of the request")
	}
	ops := find(audit.records(t), func(r map[string]any) bool { return r["request_id"] == id && r["msg"] == "graphql operation" })
	if len(ops) != 1 || ops[0]["trace_id"] != traceID.String() {
		t.Errorf("audit records of the request %v, want one with trace_id %s", ops, traceID)
	}
}

func index(spans tracetest.SpanStubs) map[trace.SpanID]tracetest.SpanStub {
	out := make(map[trace.SpanID]tracetest.SpanStub, len(spans))
	for _, s := range spans {
		out[s.SpanContext.SpanID()] = s
	}
	return out
}

// erpgraph started with OTEL_EXPORTER_OTLP_ENDPOINT sends its spans there as
// OTLP protobuf over HTTP (POST /v1/traces), with OTEL_SERVICE_NAME as the
// service name; what is still buffered goes out when the app closes.
func TestApp_TracesExportOTLP(t *testing.T) {
	var mu sync.Mutex
	var got []*coltracepb.ExportTraceServiceRequest
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not OTLP/HTTP protobuf traces", http.StatusNotFound)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, err := io.ReadAll(body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err == nil {
			err = proto.Unmarshal(raw, req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer receiver.Close()

	cfg, err := app.ConfigFromEnv(envOf(map[string]string{
		"ERPGRAPH_ADDR": "127.0.0.1:0", "ERPGRAPH_SYNC_INTERVAL": "off",
		"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.URL, "OTEL_SERVICE_NAME": "erpgraph-otlp-test",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quiet
	id := serveOne(t, cfg, `query Me { me { login } }`) // closing the app flushes the batched spans

	mu.Lock()
	defer mu.Unlock()
	var names []string
	found := false
	for _, req := range got {
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
					for _, kv := range s.Attributes {
						if kv.Key == "erpgraph.request_id" && kv.GetValue().GetStringValue() == id && s.Name == "POST /graphql" {
							found = service == "erpgraph-otlp-test"
						}
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("the receiver got %d exports with spans %v, want the server span of %s from service erpgraph-otlp-test", len(got), names, id)
	}
}

// The OTEL_* settings are checked at start-up, like every other setting: a
// sampler, protocol or endpoint erpgraph cannot honour is an error naming the
// variable, not a silent default.
func TestConfigFromEnv_TracingErrors(t *testing.T) {
	tests := []struct{ env, value, want string }{
		{"OTEL_TRACES_SAMPLER", "jaeger_remote", "OTEL_TRACES_SAMPLER"},
		{"OTEL_TRACES_SAMPLER_ARG", "1.5", "OTEL_TRACES_SAMPLER"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"OTEL_SDK_DISABLED", "maybe", "OTEL_SDK_DISABLED"},
		{"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
	}
	for _, tc := range tests {
		env := map[string]string{tc.env: tc.value}
		if tc.env == "OTEL_TRACES_SAMPLER_ARG" {
			env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
		}
		_, err := app.ConfigFromEnv(envOf(env), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: err = %v, want one naming %s", tc.env, tc.value, err, tc.want)
		}
	}
	cfg, err := app.ConfigFromEnv(envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true",
		"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}), nil)
	if err != nil || !cfg.Tracing.Disabled || cfg.Tracing.Endpoint != "http://collector:4318" || cfg.Tracing.SamplerArg != "0.25" {
		t.Errorf("config %+v, err %v", cfg.Tracing, err)
	}
}

// A collector that refuses the spans costs the traces, not the service: the
// failure is a JSON warning in erpgraph's log (not the SDK's plain text on
// stderr), the operation is answered, and the app still closes cleanly.
func TestApp_TracesCollectorRefuses(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "no", http.StatusBadRequest) // not retryable: the exporter gives up at once
	}))
	defer collector.Close()
	logs := &syncBuffer{}
	cfg := devConfig(t)
	cfg.Tracing.TracesEndpoint = collector.URL + "/v1/traces"
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	serveOne(t, cfg, `{ me { login } }`)
	warned := find(logs.records(t), func(r map[string]any) bool {
		msg, _ := r["msg"].(string)
		return r["level"] == "WARN" && strings.HasPrefix(msg, "tracing: ")
	})
	if len(warned) == 0 {
		t.Errorf("no warning that the spans were not exported; log:\n%s", logs.String())
	}
}

// serveOne runs the app for one operation of the Owner's, then shuts it down and closes it (checking both went
// cleanly), and returns the operation's request ID.
func serveOne(t *testing.T, cfg app.Config, query string) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	res := send(t, nil, newPost(t, a, login(t, a, fixture.OwnerLogin), "application/json", jsonBody(query, nil)))
	if res.status != http.StatusOK || res.code() != "" {
		t.Errorf("query: %d %+v", res.status, res.body.Errors)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	return res.header.Get("X-Request-ID")
}
