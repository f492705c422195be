package erpclient

import "context"

// The scheduler shares one ERP.net session among every user of erpgraph. So
// that one user's burst cannot fill the queue for everyone, calls carry the
// caller they are made for: dispatch takes waiting calls round-robin across
// callers, and each caller may hold only SchedulerConfig.MaxQueuePerCaller
// waiting calls.

type callerKey struct{}

// caller is what WithCaller puts in a context. Its address also identifies
// one operation for Config.OnUpstream: an upstream request carrying the work
// of several resolvers of one GraphQL request counts once for it.
type caller struct{ key string }

// WithCaller returns a context whose ERP.net calls count as key's (a user id)
// for the scheduler's fair share and per-caller queue cap. Calls without a
// caller share one anonymous key, which only MaxQueue bounds.
func WithCaller(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, callerKey{}, &caller{key: key})
}

// callerOf returns ctx's caller key and the identity under which its
// upstream requests are reported: the WithCaller value, else one of the
// call's own (a context is not a safe map key: some are not comparable).
func callerOf(ctx context.Context) (key string, tally any) {
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		return c.key, c
	}
	return "", &caller{}
}
