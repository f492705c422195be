package redisstore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"

	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/redisstore"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// go-redis's own lines (here: failed dials while Redis is down) arrive in
// the structured log as JSON records, and a burst of the same line is one
// record.
func TestSetLogger_StructuredAndBounded(t *testing.T) {
	srv := redistest.Start(t)
	var buf syncBuffer
	c, err := redisstore.New(redisstore.Config{URL: srv.URL(), Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		redisstore.SetLogger(slog.New(slog.DiscardHandler))
	})
	srv.Stop()
	for range 5 {
		if c.Ping(context.Background()) == nil {
			t.Fatal("Ping with Redis down succeeded")
		}
	}
	lines := buf.lines()
	if len(lines) != 1 {
		t.Fatalf("%d log lines for 5 failed dials, want 1: %q", len(lines), lines)
	}
	var rec struct {
		Level, Msg, Detail string
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec.Level != "WARN" || rec.Msg != "redis: client" || rec.Detail == "" {
		t.Errorf("record %q: %+v %v", lines[0], rec, err)
	}
}
