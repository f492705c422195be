// Package loadclient is what cmd/erpload, cmd/erpsoak and the replica tests share: portal users
// signed in at erpsim (with token refresh), a GraphQL client that keeps each
// answer's status, Retry-After and error codes, the logins a run uses (the demo
// users or erpsim's generated portal users, one per simulated client), and the
// process measurements (CPU time, RSS) both commands print.
package loadclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// DashboardQuery is the portal start page: 20 orders with customer and party,
// lines with products, and invoices.
const DashboardQuery = `query Dashboard {
  salesOrders(first: 20) {
    totalCount
    nodes {
      id documentNo documentDate state
      customer { id number party { name } }
      lines { lineNo quantity { value unit } unitPrice { amount currency } product { id partNumber name } }
      invoices { id documentNo documentDate }
    }
  }
}`

// DistinctLogins returns n generated portal users whose role shows sales
// orders (fixture.GeneratedSeesOrders), one per client, and how many users
// erpsim must generate to include them all.
func DistinctLogins(n int) (logins []string, generate int) {
	for k := 1; len(logins) < n; k++ {
		if fixture.GeneratedSeesOrders(k) {
			logins = append(logins, fixture.GeneratedLogin(k))
		}
		generate = k
	}
	return logins, generate
}

// NewHTTPClient is a client with keep-alive connections for conns concurrent
// users and a generous timeout (a run's operations must end by themselves).
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns}}
}

// User is one signed-in portal user. Its methods are safe for concurrent use.
type User struct {
	Login string
	sim   *erpsim.Sim

	mu        sync.Mutex
	token     string
	refreshAt time.Time
}

// SignIn signs login in at sim through the playground application (the real
// code + PKCE flow) and schedules the token's refresh at 80% of its lifetime.
func SignIn(ctx context.Context, sim *erpsim.Sim, login string) (*User, error) {
	u := &User{Login: login, sim: sim}
	return u, u.signIn(ctx)
}

// SignInAll signs logins in, a few at a time (each is several HTTP requests
// to erpsim's identity server).
func SignInAll(ctx context.Context, sim *erpsim.Sim, logins []string) ([]*User, error) {
	users := make([]*User, len(logins))
	errs := make([]error, len(logins))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, l := range logins {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			users[i], errs[i] = SignIn(ctx, sim, l)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return users, nil
}

func (u *User) signIn(ctx context.Context) error {
	tk, err := u.sim.Login(ctx, fixture.PlaygroundClientID, u.Login, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		return fmt.Errorf("sign in %s: %w", u.Login, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.token = tk.AccessToken
	u.refreshAt = time.Now().Add(time.Duration(tk.ExpiresIn) * time.Second * 4 / 5)
	return nil
}

// Token is the user's access token, signed in again when the old one is near
// its end.
func (u *User) Token(ctx context.Context) (string, error) {
	u.mu.Lock()
	due := time.Now().After(u.refreshAt)
	u.mu.Unlock()
	if due {
		if err := u.signIn(ctx); err != nil {
			return "", err
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.token, nil
}

// Error is one GraphQL error of an answer.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is extensions.code, or "".
func (e Error) Code() string { c, _ := e.Extensions["code"].(string); return c }

// Response is one GraphQL answer.
type Response struct {
	Data       json.RawMessage `json:"data"`
	Errors     []Error         `json:"errors"`
	Extensions map[string]any  `json:"extensions"`
	// Status is the HTTP status; RetryAfter the Retry-After header ("" if none).
	Status     int         `json:"-"`
	RetryAfter string      `json:"-"`
	Header     http.Header `json:"-"`
}

// Code is the first error's code, "" when the answer has no errors.
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code()
}

// RetryAfterTime is when the answer says to retry (the Retry-After header, else
// extensions.retryAfter of the first error), 0 if it does not say.
func (r *Response) RetryAfterTime() time.Duration {
	if n, err := strconv.Atoi(r.RetryAfter); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if len(r.Errors) > 0 {
		if s, ok := r.Errors[0].Extensions["retryAfter"].(float64); ok && s > 0 {
			return time.Duration(s * float64(time.Second))
		}
	}
	return 0
}

// HasRetryAfter reports whether the answer says when to retry: the
// Retry-After header or extensions.retryAfter on its first error.
func (r *Response) HasRetryAfter() bool {
	if r.RetryAfter != "" {
		return true
	}
	if len(r.Errors) == 0 {
		return false
	}
	_, ok := r.Errors[0].Extensions["retryAfter"]
	return ok
}

// maxAnswer bounds an answer read into memory.
const maxAnswer = 16 << 20

// Post sends one GraphQL request as u to url. err means there was no GraphQL
// answer at all (transport failure, or a body that is not JSON).
func Post(ctx context.Context, c *http.Client, url string, u *User, query string, vars map[string]any) (*Response, error) {
	return PostHeader(ctx, c, url, u, query, vars, nil)
}

// PostHeader is Post with extra request headers hdr; the answer's headers
// are in Response.Header.
func PostHeader(ctx context.Context, c *http.Client, url string, u *User, query string, vars map[string]any, hdr http.Header) (*Response, error) {
	token, err := u.Token(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return &Response{Status: res.StatusCode}, fmt.Errorf("HTTP %d: read: %w", res.StatusCode, err)
	}
	r := &Response{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After"), Header: res.Header}
	if err := json.Unmarshal(raw, r); err != nil {
		return r, fmt.Errorf("HTTP %d, not JSON: %w", res.StatusCode, err)
	}
	return r, nil
}

// FormatBytes renders a byte count in MiB.
func FormatBytes(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MiB" }

// Pause waits d or until ctx ends.
func Pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
