package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/mutation"
)

// inputError is a problem with the operation's arguments; its text is shown to the client as is.
type inputError string

func (e inputError) Error() string { return string(e) }

func inputErrorf(format string, args ...any) error { return inputError(fmt.Sprintf(format, args...)) }

// errIntrospectionDisabled refuses __schema and __type outside dev mode.
var errIntrospectionDisabled = errors.New("graph: introspection disabled")

// errInternal stands for a recovered panic.
var errInternal = errors.New("graph: internal error")

// classify maps an error from any layer to its code and the message the client may see. Only inputError and
// access refusals carry their own text; everything else gets a fixed sentence, so no upstream body, URL or token
// can reach a response.
func classify(err error) (code, msg string) {
	var in inputError
	var refusal *access.ForbiddenError
	var limited *mutation.ErrRateLimited
	switch {
	case errors.Is(err, mutation.ErrDisabled):
		return mutation.CodeWritesDisabled, "writes are disabled on this server"
	case errors.As(err, &limited):
		return mutation.CodeRateLimited, "too many changes in a short time; retry later"
	case errors.As(err, new(*mutation.ErrKeysUnavailable)):
		return mutation.CodeIdempotencyUnavailable, "the idempotency key could not be checked, so nothing was written; retry with the same key after retryAfter seconds"
	case errors.Is(err, errIntrospectionDisabled):
		return errcode.IntrospectionDisabled, "introspection is disabled on this server"
	case errors.As(err, &in):
		return errcode.BadUserInput, string(in)
	case errors.Is(err, auth.ErrUnauthenticated):
		return errcode.Unauthenticated, "authentication required: send a valid access token"
	case errors.As(err, &refusal):
		return errcode.Forbidden, refusal.PublicMessage()
	case errors.Is(err, access.ErrForbidden):
		return errcode.Forbidden, "you may not use this service"
	case errors.Is(err, loader.ErrNotFound), errors.Is(err, erpclient.ErrNotFound),
		errors.Is(err, access.ErrNotVisible), errors.Is(err, access.ErrNoAccess):
		return errcode.NotFound, "not found"
	case errors.Is(err, erpclient.ErrConflict):
		return errcode.Conflict, "the data was changed by someone else or can no longer be changed"
	case errors.As(err, new(*erpclient.BusyError)):
		return errcode.UpstreamBusy, "the ERP system is busy; try again after retryAfter seconds"
	case errors.Is(err, erpclient.ErrBusy), errors.Is(err, erpclient.ErrUnavailable),
		errors.Is(err, erpclient.ErrUnauthorized), errors.Is(err, context.DeadlineExceeded):
		return errcode.UpstreamUnavailable, "the ERP system is unavailable or busy; try again later"
	case errors.Is(err, context.Canceled):
		return errcode.Cancelled, "the request was cancelled"
	}
	return errcode.Internal, "internal error"
}

// presentError is the single ErrorPresenter: it keeps gqlgen's own parse and validation errors, maps everything
// else with classify, adds the request ID, and logs what the client does not see.
func (r *Resolver) presentError(ctx context.Context, err error) *gqlerror.Error {
	gqlErr := graphql.DefaultErrorPresenter(ctx, err)
	if _, ok := gqlErr.Extensions["code"]; ok && gqlErr.Err == nil {
		// gqlgen's GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED and friends
		gqlErr.Extensions["requestId"] = requestID(ctx)
		return gqlErr
	}
	var cause error = gqlErr
	if gqlErr.Err != nil {
		cause = gqlErr.Err
	}
	code, msg := classify(cause)
	switch code {
	case errcode.Internal, errcode.UpstreamUnavailable, errcode.IdempotencyUnavailable:
		r.logger.ErrorContext(ctx, "graphql: request failed", "requestId", requestID(ctx), "code", code,
			"path", gqlErr.Path.String(), "err", cause)
	}
	ext := map[string]any{"code": code, "requestId": requestID(ctx)}
	if be := (*erpclient.BusyError)(nil); errors.As(cause, &be) {
		ext["retryAfter"] = retryAfterSeconds(be.RetryAfter)
	}
	if ku := (*mutation.ErrKeysUnavailable)(nil); errors.As(cause, &ku) {
		ext["retryAfter"] = retryAfterSeconds(ku.RetryAfter)
	}
	return &gqlerror.Error{
		Message:    msg,
		Path:       gqlErr.Path,
		Locations:  gqlErr.Locations,
		Extensions: ext,
	}
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1 (what Retry-After can say).
func retryAfterSeconds(d time.Duration) int {
	return int(max(1, (d+time.Second-1)/time.Second))
}

// recoverPanic turns a panic in a resolver into INTERNAL_SERVER_ERROR, logging the stack.
func (r *Resolver) recoverPanic(ctx context.Context, p any) error {
	r.logger.ErrorContext(ctx, "graphql: panic", "requestId", requestID(ctx), "panic", fmt.Sprint(p),
		"stack", string(debug.Stack()))
	return errInternal
}

func requestID(ctx context.Context) string {
	return requestFrom(ctx).id
}

// discardLogger is the default logger.
var discardLogger = slog.New(slog.DiscardHandler)
