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

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

// tokenSource holds the process's one service token (ERPNET.md §2: every
// process needs its own token and session). It is built once with the
// application context; it refreshes ahead of expiry, runs one exchange at a
// time however many calls wait, and forgets a token the Domain API refused.
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
	flight    singleflight.Group
}

// maxEarly is how long before expiry a token is replaced. Short-lived tokens
// (tests) refresh at 4/5 of their life instead, so they are still reused.
const maxEarly = 2 * time.Minute

// tokenTimeout bounds one exchange with the identity server.
const tokenTimeout = 30 * time.Second

// token returns a valid token, fetching one if needed. A caller whose ctx ends
// stops waiting; the exchange itself continues for the others.
func (ts *tokenSource) token(ctx context.Context) (*oauth2.Token, error) {
	if t := ts.cached(); t != nil {
		return t, nil
	}
	ch := ts.flight.DoChan("token", func() (any, error) { return ts.fetch() })
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
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok != nil && ts.now().Before(ts.refreshAt) {
		return ts.tok
	}
	return nil
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

func (ts *tokenSource) fetch() (*oauth2.Token, error) {
	if t := ts.cached(); t != nil { // another flight just finished
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ts.appCtx, tokenTimeout)
	defer cancel()
	start := ts.now()
	ts.stats.tokenRequests.Add(1)
	t, err := ts.conf.Token(ctx)
	if err != nil {
		err = tokenError(err)
		ts.audit.LogAttrs(ctx, slog.LevelWarn, "erp token exchange",
			slog.String("client_id", ts.clientID),
			slog.String("requested_scopes", strings.Join(ts.conf.Scopes, " ")),
			slog.String("outcome", "failed"),
			slog.String("error", err.Error()),
			slog.Duration("duration", ts.now().Sub(start)))
		return nil, err
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("service token: %w: identity server returned no access token", ErrUnavailable)
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
		return nil, fmt.Errorf("service token: %w: identity server issued an expired token", ErrUnavailable)
	}
	t.Expiry = start.Add(life)
	early := min(maxEarly, life/5)
	granted, _ := t.Extra("scope").(string)
	ts.mu.Lock()
	ts.tok, ts.refreshAt = t, t.Expiry.Add(-early)
	ts.mu.Unlock()
	ts.audit.LogAttrs(ctx, slog.LevelInfo, "erp token exchange",
		slog.String("client_id", ts.clientID),
		slog.String("granted_scopes", granted),
		slog.Time("expires", t.Expiry),
		slog.String("outcome", "ok"),
		slog.String("fingerprint", fingerprint(t.AccessToken)),
		slog.Duration("duration", ts.now().Sub(start)))
	return t, nil
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
