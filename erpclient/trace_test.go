package erpclient_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/internal/spantest"
)

type headerRecorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// Two traced operations whose reads wait together share one $batch: its span
// is the child of the first caller's span and links to the other's, says how
// many parts and callers it carried and how ERP.net answered; each caller's
// scheduler wait is a span of its own. No request to ERP.net or its identity
// server carries the trace context.
func TestClient_TracesSharedBatch(t *testing.T) {
	headers := &headerRecorder{}
	f, c, release, first := heldFake(t, func(cfg *erpclient.Config) {
		cfg.HTTPClient = &http.Client{Transport: headers, Timeout: 30 * time.Second}
	})
	rec := spantest.New()
	tr := rec.Provider().Tracer("test")
	ctxA, opA := tr.Start(context.Background(), "operation A")
	ctxB, opB := tr.Start(context.Background(), "operation B")
	ctxs := []context.Context{ctxA, ctxB}
	wait := runConcurrently(2, func(i int) error {
		_, err := erpclient.List[erpclient.Product](ctxs[i], c, productQuery(100+i))
		return err
	})
	waitFor(t, "both reads queued", func() bool { return c.Stats().Queued == 2 })
	release()
	noErrors(t, first(), wait())
	opA.End()
	opB.End()
	if log := f.log(); len(log) != 3 || !strings.HasPrefix(log[2], "POST /odata/$batch [2 parts]") {
		t.Fatalf("upstream requests %q, want the held read and one $batch of 2", log)
	}

	spans := rec.Spans()
	ops := map[trace.SpanID]string{opA.SpanContext().SpanID(): "A", opB.SpanContext().SpanID(): "B"}
	var batch *tracetest.SpanStub
	waits := map[string]int{}
	for i, s := range spans {
		switch s.Name {
		case "erp POST $batch":
			batch = &spans[i]
		case "erp.queue":
			waits[ops[s.Parent.SpanID()]]++
		}
	}
	if batch == nil {
		t.Fatalf("no $batch span: %v", spantest.Names(spans))
	}
	parent := ops[batch.Parent.SpanID()]
	other := opB.SpanContext()
	if parent == "B" {
		other = opA.SpanContext()
	}
	if parent == "" || len(batch.Links) != 1 || !batch.Links[0].SpanContext.Equal(other) || batch.SpanKind != trace.SpanKindClient {
		t.Errorf("$batch span under %q with links %v, want under one operation, linked to the other", parent, batch.Links)
	}
	want := map[string]string{"erp.batch.parts": "2", "erp.calls": "2", "http.response.status_code": "200", "erp.batch.failed_parts": "0",
		"erp.http_requests": "1", "erp.entity_sets": `["General_Products_Products"]`}
	for _, kv := range batch.Attributes {
		if w, ok := want[string(kv.Key)]; ok {
			if kv.Value.Emit() != w {
				t.Errorf("%s = %s, want %s", kv.Key, kv.Value.Emit(), w)
			}
			delete(want, string(kv.Key))
		}
		if strings.Contains(kv.Value.Emit(), "PartNumber") {
			t.Errorf("%s = %q holds the query", kv.Key, kv.Value.Emit())
		}
	}
	if len(want) > 0 {
		t.Errorf("$batch span lacks %v: %v", want, batch.Attributes)
	}
	if waits["A"] != 1 || waits["B"] != 1 {
		t.Errorf("scheduler waits per operation %v, want one each", waits)
	}
	headers.mu.Lock()
	defer headers.mu.Unlock()
	for _, h := range headers.seen {
		for k := range h {
			if k := strings.ToLower(k); k == "traceparent" || k == "tracestate" || k == "baggage" {
				t.Errorf("a request to ERP.net carried %s", k)
			}
		}
	}
}
