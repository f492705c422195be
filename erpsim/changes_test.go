package erpsim_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim"
)

// Churn moves reference data while erpsim runs: it renames products and, in turn, adds a product and deletes the
// one it added, so a client can watch both a change and a deletion arrive.
func TestSim_ChurnAddsAndDeletes(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s)
	churned := func() []any {
		t.Helper()
		q := url.Values{"$select": {"Id,PartNumber"}, "$filter": {"startswith(PartNumber,'CHURN-')"}}
		r := get(t, s.ODataURL()+"General_Products_Products?"+q.Encode(), tok)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		rows, _ := decodeJSON(t, r.body)["value"].([]any)
		return rows
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Churn(ctx, 5*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })

	var added string
	waitUntil(t, "churn to add a product", func() bool {
		rows := churned()
		if len(rows) > 1 {
			t.Fatalf("churn keeps %d products of its own, want at most 1", len(rows))
		}
		if len(rows) == 1 {
			added = rows[0].(map[string]any)["Id"].(string)
		}
		return added != ""
	})
	waitUntil(t, "churn to delete it", func() bool {
		for _, r := range churned() {
			if r.(map[string]any)["Id"] == added {
				return false
			}
		}
		return true
	})
	if r := get(t, s.ODataURL()+"General_Products_Products("+added+")", tok); r.status != http.StatusNotFound {
		t.Errorf("the deleted product answers %d", r.status)
	}
}

// waitUntil polls cond until it holds (it fails the test after 20 s).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
