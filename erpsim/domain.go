package erpsim

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/erpsim/odata"
)

const (
	domainPrefix = "/api/domain/odata/"
	odataJSON    = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	// maxBatchBody bounds how much of a $batch body is buffered to count its parts.
	maxBatchBody = 32 << 20
)

// domainMiddleware puts ERP.net's API gate in front of the Domain API:
// bearer-token verification, the external-user and scope checks, sessions
// with the license count, and the per-session limiter. Latency is simulated
// while the request holds its session slot, as slow processing would.
func (s *Sim) domainMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		meta := metaFrom(r.Context())
		claims, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		meta.clientID, meta.login = claims.ClientID, claims.login()
		if claims.UserType == fixture.ExternalCommunityUser {
			odata.WriteError(w, http.StatusForbidden, 0, "System.UnauthorizedAccessException",
				"External (community) users cannot use the Domain API: their sign-in proves identity only.")
			return
		}
		if !slices.Contains(claims.Scope, scopeRead) {
			odata.WriteError(w, http.StatusForbidden, 0, "System.UnauthorizedAccessException",
				"The access token does not grant the 'read' scope.")
			return
		}
		key := "sid:" + claims.SID
		if claims.isService() || claims.SID == "" {
			key = "jti:" + claims.JTI
		}
		meta.session = key
		ss, wait, err := s.sessions.admit(key, claims.isService(), s.currentLimits(), s.now())
		if err != nil {
			s.log.Debug("erpsim: request refused", "session", key, "client_id", claims.ClientID, "err", err)
		}
		var rl *rateLimitedError
		switch {
		case errors.Is(err, errNoLicense):
			w.Header().Set("Retry-After", "60")
			writeLicenseExceeded(w)
			return
		case errors.As(err, &rl):
			w.Header().Set("Retry-After", strconv.Itoa(rl.retryAfter))
			writeTooManyRequests(w)
			return
		case errors.Is(err, errSessionBusy):
			w.Header().Set("Retry-After", "1")
			writeTooManyRequests(w)
			return
		}
		if wait != nil && !s.sessions.await(r.Context(), s.done, ss, wait, s.now) {
			return // client gone or sim closing
		}
		defer func() { s.sessions.release(ss, s.now()) }()

		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/$batch") {
			meta.batchParts, meta.changeset = countBatchParts(r)
		}
		s.holdLatency(r.Context(), time.Now())
		if r.Context().Err() != nil {
			return
		}
		p := odata.Principal{ClientID: claims.ClientID, Login: claims.login(), Scopes: claims.Scope}
		next.ServeHTTP(w, r.WithContext(odata.NewContext(r.Context(), p)))
	})
}

// authenticate verifies the bearer access token; on failure it answers 401.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (*accessClaims, bool) {
	raw, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return nil, false
	}
	claims, err := s.tokCache.verify(s, raw)
	if err != nil {
		s.log.Debug("erpsim: bearer token refused", "err", err)
		writeInvalidToken(w)
		return nil, false
	}
	return claims, true
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// writeInvalidToken is the Domain API's 401: no body, a Bearer challenge.
func writeInvalidToken(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	w.WriteHeader(http.StatusUnauthorized)
}

func writeTooManyRequests(w http.ResponseWriter) {
	odata.WriteError(w, http.StatusTooManyRequests, 0, "Aloe.SystemFrameworks.TooManyRequestsException",
		"Too many requests for this session. Retry later.")
}

func writeLicenseExceeded(w http.ResponseWriter) {
	odata.WriteError(w, http.StatusServiceUnavailable, 8, "Aloe.SystemFrameworks.E1LicenseException",
		"The maximum number of simultaneously connected users to this database is exceeded.")
}

// countBatchParts counts the requests in a multipart $batch body (changeset
// members one by one) and restores the body for the handler.
func countBatchParts(r *http.Request) (parts, inChangesets int) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBatchBody))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return 0, 0
	}
	return countParts(r.Header.Get("Content-Type"), body, 0)
}

// countParts counts the requests of a multipart body and those of them inside changesets (nested multiparts).
func countParts(contentType string, body []byte, depth int) (n, inChangesets int) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" || depth > 1 {
		return 0, 0
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return n, inChangesets
		}
		ct := p.Header.Get("Content-Type")
		if strings.HasPrefix(strings.ToLower(ct), "multipart/") {
			inner, _ := io.ReadAll(p)
			m, _ := countParts(ct, inner, depth+1)
			n += m
			inChangesets += m
			continue
		}
		n++
	}
}

// tokenCache remembers verified access tokens so repeated calls with the same
// token skip the RSA verification; lifetime and revocation are still checked
// on every use.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*accessClaims
}

const maxCachedTokens = 10_000

func (c *tokenCache) verify(s *Sim, raw string) (*accessClaims, error) {
	c.mu.Lock()
	claims := c.m[raw]
	c.mu.Unlock()
	if claims != nil {
		if err := s.checkClaims(claims); err != nil {
			return nil, err
		}
		return claims, nil
	}
	claims, err := s.verifyAccess(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = map[string]*accessClaims{}
	}
	c.m[raw] = claims
	c.mu.Unlock()
	return claims, nil
}
