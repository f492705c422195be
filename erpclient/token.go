package erpclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/erpgraph/erpgraph/tracing"
)

// tokenSource holds the process's one service token (docs/erpnet.md § Sessions and licensing: every
// process needs its own token and session). It is built once with the
// application context; it refreshes ahead of expiry in the background, runs
// one exchange at a time however many calls wait, and forgets a token the
// Domain API refused. When the identity server fails, the current token
// stays in use until it really expires, and exchanges are retried with
// back-off (callers without a valid token get the last failure at once
// instead of one exchange each).
type tokenSource struct {
	conf     *clientcredentials.Config
	appCtx   context.Context // carries the HTTP client (oauth2.HTTPClient); lives as long as the Client
	now      func() time.Time
	audit    *slog.Logger
	clientID string
	stats    *counters

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time
	failures  int       // consecutive failed exchanges
	retryAt   time.Time // no exchange before this after a failure
	lastErr   error     // the last failed exchange; nil after a success
	flight    singleflight.Group
}

// Token back-off after failed exchanges: doubling from tokenRetryMin.
const (
	tokenRetryMin = time.Second
	tokenRetryMax = 30 * time.Second
)

// maxEarly is how long before expiry a token is replaced. Short-lived tokens
// (tests) refresh at 4/5 of their life instead, so they are still reused.
const maxEarly = 2 * time.Minute

// tokenTimeout bounds one exchange with the identity server.
const tokenTimeout = 30 * time.Second

// token returns a valid token, fetching one if needed. A caller whose ctx ends
// stops waiting; the exchange itself continues for the others.
func (ts *tokenSource) token(ctx context.Context) (*oauth2.Token, error) {
	t, fresh, lastErr := ts.current()
	switch {
	case fresh:
		return t, nil
	case t != nil: // still valid, refresh due: refresh in the background, keep using it
		if lastErr == nil {
			span := trace.SpanFromContext(ctx)
			ts.flight.DoChan("token", func() (any, error) { return ts.fetch(span, true) })
		}
		return t, nil
	case lastErr != nil: // no valid token and the identity server failed moments ago
		return nil, lastErr
	}
	span := trace.SpanFromContext(ctx)
	ch := ts.flight.DoChan("token", func() (any, error) { return ts.fetch(span, false) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*oauth2.Token), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("service token: %w", ctx.Err())
	}
}

func (ts *tokenSource) cached() *oauth2.Token {
	t, fresh, _ := ts.current()
	if fresh {
		return t
	}
	return nil
}

// current returns the token while it is valid (fresh: not yet due for
// refresh) and, during the back-off after a failed exchange, that failure.
func (ts *tokenSource) current() (t *oauth2.Token, fresh bool, lastErr error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if ts.tok != nil && now.Before(ts.tok.Expiry) {
		t, fresh = ts.tok, now.Before(ts.refreshAt)
	}
	if ts.lastErr != nil && now.Before(ts.retryAt) {
		lastErr = ts.lastErr
	}
	return t, fresh, lastErr
}

// invalidate forgets t after the Domain API refused it; a token fetched by
// another call in the meantime is kept (N calls refused together cause one exchange).
func (ts *tokenSource) invalidate(t *oauth2.Token) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok == t {
		ts.tok = nil
	}
}

// fetch exchanges the client credentials for a token; parent is the span of
// the request that needed it (for the exchange's span), background says that
// request does not wait for it.
func (ts *tokenSource) fetch(parent trace.Span, background bool) (*oauth2.Token, error) {
	if t := ts.cached(); t != nil { // another flight just finished
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ts.appCtx, tokenTimeout)
	defer cancel()
	ctx, span := ts.startToken(ctx, parent, background)
	defer span.End()
	start := ts.now()
	ts.stats.tokenRequests.Add(1)
	t, err := ts.conf.Token(ctx)
	if err == nil && t.AccessToken == "" {
		err = fmt.Errorf("service token: %w: identity server returned no access token", ErrUnavailable)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "service token: ") {
			err = tokenError(err)
		}
		ts.failed(err)
		span.SetAttributes(attrOutcome.String("failed"))
		tracing.Fail(span, err)
		ts.audit.LogAttrs(ctx, slog.LevelWarn, "erp token exchange",
			slog.String("client_id", ts.clientID),
			slog.String("requested_scopes", strings.Join(ts.conf.Scopes, " ")),
			slog.String("outcome", "failed"),
			slog.String("error", err.Error()),
			slog.Duration("duration", ts.now().Sub(start)))
		return nil, err
	}
	// lifetime by the client's own clock: expires_in when given (oauth2 sets
	// Expiry by the wall clock, which tests and skewed hosts do not share)
	var life time.Duration
	switch {
	case t.ExpiresIn > 0:
		life = time.Duration(t.ExpiresIn) * time.Second
	case !t.Expiry.IsZero():
		life = time.Until(t.Expiry)
	default:
		life = time.Hour // ERP.net documents 1 h
	}
	if life <= 0 {
		err := fmt.Errorf("service token: %w: identity server issued an expired token", ErrUnavailable)
		ts.failed(err)
		span.SetAttributes(attrOutcome.String("failed"))
		tracing.Fail(span, err)
		return nil, err
	}
	t.Expiry = start.Add(life)
	early := min(maxEarly, life/5)
	granted, _ := t.Extra("scope").(string)
	ts.mu.Lock()
	ts.tok, ts.refreshAt = t, t.Expiry.Add(-early)
	ts.failures, ts.lastErr, ts.retryAt = 0, nil, time.Time{}
	ts.mu.Unlock()
	span.SetAttributes(attrOutcome.String("ok"))
	ts.audit.LogAttrs(ctx, slog.LevelInfo, "erp token exchange",
		slog.String("client_id", ts.clientID),
		slog.String("granted_scopes", granted),
		slog.Time("expires", t.Expiry),
		slog.String("outcome", "ok"),
		slog.String("fingerprint", fingerprint(t.AccessToken)),
		slog.Duration("duration", ts.now().Sub(start)))
	return t, nil
}

// failed starts or lengthens the back-off after a failed exchange.
func (ts *tokenSource) failed(err error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.failures++
	wait := min(tokenRetryMax, tokenRetryMin<<min(ts.failures-1, 10))
	ts.lastErr, ts.retryAt = err, ts.now().Add(wait)
}

// TokenState is the state of the client's service token.
type TokenState string

// Token states.
const (
	TokenNone    TokenState = "none"    // no token in hand (none fetched yet, or it expired unused); the next call fetches one
	TokenValid   TokenState = "valid"   // a token is in use and refreshes on time
	TokenStale   TokenState = "stale"   // the token is still valid but refreshing it failed
	TokenExpired TokenState = "expired" // no valid token, and the last exchange failed: calls fail with ErrUnavailable
)

// health reports the token's state, its expiry and the last exchange failure.
func (ts *tokenSource) health() (TokenState, time.Time, string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var msg string
	if ts.lastErr != nil {
		msg = ts.lastErr.Error()
	}
	now := ts.now()
	switch {
	case ts.tok != nil && now.Before(ts.tok.Expiry) && ts.lastErr != nil:
		return TokenStale, ts.tok.Expiry, msg
	case ts.tok != nil && now.Before(ts.tok.Expiry):
		return TokenValid, ts.tok.Expiry, msg
	case ts.lastErr != nil:
		var exp time.Time
		if ts.tok != nil {
			exp = ts.tok.Expiry
		}
		return TokenExpired, exp, msg
	}
	return TokenNone, time.Time{}, msg
}

// fingerprint identifies a token in logs without revealing it.
func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:4])
}

// tokenError classifies a failed exchange. The identity server's body is
// not kept: it is upstream text, and the error must be safe to log anywhere.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := re.ErrorCode
		if !codeRE.MatchString(code) {
			code = ""
		}
		switch {
		case code == "invalid_client", code == "unauthorized_client", code == "invalid_scope",
			code == "invalid_grant", status == 400 && code == "", status == 401:
			return fmt.Errorf("service token: %w: the identity server refused the client credentials (status %d %s)",
				ErrUnauthorized, status, code)
		}
		return fmt.Errorf("service token: %w: identity server answered status %d %s", ErrUnavailable, status, code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("service token: %w: %w", ErrUnavailable, stripURL(err))
	}
	return fmt.Errorf("service token: %w: %w", ErrUnavailable, stripURL(err))
}
