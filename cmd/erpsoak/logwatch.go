package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/erpgraph/erpgraph/errcode"
)

// logWatch reads erpgraph's own log while it passes through: it counts
// recovered panics (the only way to tell them from other INTERNAL_SERVER_ERROR
// answers) and the causes behind INTERNAL_SERVER_ERROR answers, so a failed
// run says what to fix.
type logWatch struct {
	mu     sync.Mutex
	panics int
	causes map[string]int // err of "request failed" records with code INTERNAL_SERVER_ERROR
}

// maxCauses bounds the distinct causes kept.
const maxCauses = 20

func newLogWatch() *logWatch { return &logWatch{causes: map[string]int{}} }

// handler returns a slog.Handler that feeds w and passes records on to next
// (nil: nowhere).
func (w *logWatch) handler(next slog.Handler) slog.Handler {
	if next == nil {
		next = slog.DiscardHandler
	}
	return &watchHandler{w: w, next: next}
}

func (w *logWatch) counts() (panics int, causes map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.causes))
	for k, v := range w.causes {
		out[k] = v
	}
	return w.panics, out
}

type watchHandler struct {
	w    *logWatch
	next slog.Handler
}

func (h *watchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *watchHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "graphql: panic", "server: panic":
		h.w.mu.Lock()
		h.w.panics++
		h.w.mu.Unlock()
	case "graphql: request failed":
		var code, cause string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "code":
				code = a.Value.String()
			case "err":
				cause = a.Value.String()
			}
			return true
		})
		if code == errcode.Internal {
			h.w.mu.Lock()
			if _, ok := h.w.causes[cause]; ok || len(h.w.causes) < maxCauses {
				h.w.causes[cause]++
			}
			h.w.mu.Unlock()
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *watchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &watchHandler{w: h.w, next: h.next.WithAttrs(attrs)}
}

func (h *watchHandler) WithGroup(name string) slog.Handler {
	return &watchHandler{w: h.w, next: h.next.WithGroup(name)}
}
