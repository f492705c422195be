package app_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// The audit record of an operation says how many ERP.net requests it made:
// exactly what erpsim's Domain API saw while the operation ran alone (the
// first run also resolves the user's access, so the runs may differ).
func TestApp_AuditLogCountsUpstreamRequests(t *testing.T) {
	audit := &syncBuffer{}
	cfg := devConfig(t)
	cfg.AuditLogger = slog.New(slog.NewJSONHandler(audit, nil))
	cfg.ReadCache.Off = true // every run reads ERP.net, and no background sync runs alongside
	a := run(t, cfg)
	tok := login(t, a, fixture.OwnerLogin)
	const dashboard = `query Dashboard { me { login } customers(first: 2) { totalCount nodes { id } }
		salesOrders(first: 2) { totalCount nodes { documentNo lines { lineNo product { partNumber } } } } }`
	for run := range 2 {
		a.Sim().ResetRequests()
		res := send(t, nil, newPost(t, a, tok, "application/json", jsonBody(dashboard, nil)))
		if res.status != http.StatusOK || res.code() != "" {
			t.Fatalf("run %d: status %d, errors %+v", run+1, res.status, res.body.Errors)
		}
		seen := a.Sim().Stats().DomainRequests
		id := res.header.Get("X-Request-ID")
		// the record is written before the (small) response is sent, as in TestApp_AuditLog
		op := find(audit.records(t), func(r map[string]any) bool { return r["request_id"] == id && r["msg"] == "graphql operation" })
		if len(op) != 1 {
			t.Fatalf("run %d: operation records = %v", run+1, op)
		}
		got, ok := op[0]["upstream_requests"].(float64)
		if !ok || got <= 0 || int(got) != seen {
			t.Errorf("run %d: upstream_requests = %v, erpsim saw %d Domain API requests", run+1, op[0]["upstream_requests"], seen)
		}
	}
}
