package erpclient

import (
	"context"
	"sync/atomic"
)

// The scheduler shares one ERP.net session among every user of erpgraph. So
// that one user's burst cannot fill the queue for everyone, calls carry the
// caller they are made for: dispatch takes waiting calls round-robin across
// callers, and each caller may hold only SchedulerConfig.MaxQueuePerCaller
// waiting calls.

type callerKey struct{}

// WithCaller returns a context whose ERP.net calls count as key's (a user id)
// for the scheduler's fair share and per-caller queue cap. Calls without a
// caller share one anonymous key, which only MaxQueue bounds.
func WithCaller(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, callerKey{}, key)
}

func callerOf(ctx context.Context) string {
	key, _ := ctx.Value(callerKey{}).(string)
	return key
}

type counterKey struct{}

// CountUpstream returns a context whose ERP.net calls add the upstream HTTP
// requests they take part in to n: a $batch or a shared GET once for each
// counter whose calls it carried (however many of them), a retry or a 401
// repeat again. One counter per operation gives the requests made for it;
// the caller owns n and reads it when its calls are done (every call adds
// before it returns).
func CountUpstream(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, counterKey{}, n)
}

func counterOf(ctx context.Context) *atomic.Int64 {
	n, _ := ctx.Value(counterKey{}).(*atomic.Int64)
	return n
}

type operationKey struct{}

// operation is one unit of work that makes several ERP.net calls one after
// another (a GraphQL operation's levels); admitted is set once its first
// call got into the queue.
type operation struct {
	admitted atomic.Bool
	// guarded by scheduler.mu: its first call went out (scheduler.opsOut), its context ended, the later
	// calls it made since
	out, ended bool
	conts      int
}

// WithOperation returns a context whose ERP.net calls belong to one
// operation. Under load the scheduler then finishes what it started: the
// operation's first call is admitted only if it would be answered early
// enough to leave its later calls twice the time they are estimated to need
// (and at least a quarter of the deadline), its later calls go out ahead of
// other operations' first calls, and admission counts the later calls the
// operation will still make until ctx ends. Without it, every call is
// admitted on its own.
func WithOperation(ctx context.Context) context.Context {
	return context.WithValue(ctx, operationKey{}, &operation{})
}

func operationOf(ctx context.Context) *operation {
	op, _ := ctx.Value(operationKey{}).(*operation)
	return op
}

type priorityKey struct{}

// WithPriority returns a context whose ERP.net calls go ahead of the queued reads of other callers: the writes
// and the reads a mutation needs (checks before it, its answer after it), so a write is not starved behind a
// queue of reads. The scheduler serves such calls at most every other request, so reads keep their share.
// Writes have priority without it.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

func priorityOf(ctx context.Context) bool {
	p, _ := ctx.Value(priorityKey{}).(bool)
	return p
}

type backgroundKey struct{}

// WithBackground returns a context whose ERP.net calls yield to every
// interactive call: the scheduler sends them only when no other call waits
// (the background sync of reference data and the read cache's
// stale-while-revalidate refreshes run this way), or once they have waited a
// second, so that they still progress under constant load.
func WithBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}
