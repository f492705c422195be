// Package erpsim emulates one ERP.net instance on a loopback address: the
// auto-discovery document, the instance identity server (OpenID Connect with
// the trusted applications and demo users of package fixture), and the Domain
// API (package odata) behind ERP.net's bearer-token checks, sessions, license
// count and per-session rate limits. Knobs add latency and faults, and a
// request log lets tests count what an operation cost upstream.
//
// erpsim shares no code with erpgraph's ERP.net client on purpose: a test that
// passes against it checks the client against an independent reading of the
// platform documentation.
package erpsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// Options configure a Sim. The zero value is a working instance on a random
// loopback port with the demo fixtures and ERP.net's default limits.
type Options struct {
	Addr          string           // listen address; default "127.0.0.1:0"
	PublicURL     string           // externally visible base URL; default http://<listen addr>
	Apps          []fixture.App    // trusted applications; default fixture.Apps()
	Scale         int              // demo data multiplier; default 1 (1,000 sales orders)
	Users         int              // generated portal users portal.user001.. (fixture.GeneratedUser), 0..fixture.MaxGeneratedUsers
	Clock         func() time.Time // default time.Now; token times, sessions and demo dates
	TokenLifetime time.Duration    // access-token lifetime; default 1h
	Limits        Limits           // zero value → ERP.net defaults
	Logger        *slog.Logger     // default: discard
	// Before262 emulates an instance older than ERP.net v26.2: no set has
	// AggregateLastUpdateTimeUtc (selecting or filtering it is an error).
	Before262 bool
}

// Limits are ERP.net's per-session and license limits. Zero fields take the
// platform defaults; -1 means unlimited.
type Limits struct {
	ConcurrentRequests int           // per session in flight; 0 → 1; -1 → unlimited
	QueueSize          int           // per session queued beyond in-flight; 0 → 5; -1 → unlimited
	RequestsPerMinute  int           // per session, sliding minute; 0 → 600; -1 → unlimited
	Licenses           int           // max concurrent sessions; 0 → 10; -1 → unlimited
	SessionIdle        time.Duration // idle expiry; 0 → 20m
	SessionAbsolute    time.Duration // absolute expiry of service sessions; 0 → 1h
}

// Unlimited returns limits that never refuse a request, for tests and load
// runs that do not exercise ERP.net's limits.
func Unlimited() Limits {
	return Limits{ConcurrentRequests: -1, QueueSize: -1, RequestsPerMinute: -1, Licenses: -1}
}

// withDefaults fills zero fields with ERP.net's defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.ConcurrentRequests, 1)
	def(&l.QueueSize, 5)
	def(&l.RequestsPerMinute, 600)
	def(&l.Licenses, 10)
	if l.SessionIdle <= 0 {
		l.SessionIdle = 20 * time.Minute
	}
	if l.SessionAbsolute <= 0 {
		l.SessionAbsolute = time.Hour
	}
	return l
}

// Sim is a running ERP.net emulator. Its methods are safe for concurrent use.
type Sim struct {
	opts    Options
	base    string
	log     *slog.Logger
	apps    map[string]fixture.App
	appList []fixture.App
	keys    *keyRing
	store   *odata.Store
	handler http.Handler

	clock   atomic.Pointer[func() time.Time]
	tokLife atomic.Int64 // access-token lifetime (time.Duration)
	limits  atomic.Pointer[Limits]
	latency latencyKnob
	faults  faultSet
	reqlog  requestLog

	idp      idpState
	sessions sessionTable
	tokCache tokenCache

	ln        net.Listener
	srv       *http.Server
	done      chan struct{} // closed by Close; wakes requests held by latency
	closeOnce sync.Once
	closeErr  error
}

// Start builds the demo instance, listens on opts.Addr and serves until Close
// is called or ctx is done.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Apps == nil {
		opts.Apps = fixture.Apps()
	}
	if opts.Scale <= 0 {
		opts.Scale = 1
	}
	if opts.Users < 0 || opts.Users > fixture.MaxGeneratedUsers {
		return nil, fmt.Errorf("erpsim: %d generated users: want 0..%d", opts.Users, fixture.MaxGeneratedUsers)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sim{opts: opts, log: opts.Logger, apps: map[string]fixture.App{}, done: make(chan struct{})}
	for _, a := range opts.Apps {
		if a.ClientID == "" {
			return nil, errors.New("erpsim: trusted application without client id")
		}
		if _, dup := s.apps[a.ClientID]; dup {
			return nil, fmt.Errorf("erpsim: duplicate trusted application %q", a.ClientID)
		}
		s.apps[a.ClientID] = a
		s.appList = append(s.appList, a)
	}
	clock := opts.Clock
	s.clock.Store(&clock)
	s.tokLife.Store(int64(opts.TokenLifetime))
	s.SetLimits(opts.Limits)
	s.latency.init()
	s.idp.init()
	s.sessions.init()

	// RSA key generation and the demo data are the bulk of start-up: do them side by side.
	type keyResult struct {
		kr  *keyRing
		err error
	}
	keyCh := make(chan keyResult, 1)
	go func() {
		kr, err := newKeyRing()
		keyCh <- keyResult{kr, err}
	}()

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		<-keyCh
		return nil, fmt.Errorf("erpsim: listen on %s: %w", opts.Addr, err)
	}
	s.ln = ln
	s.base = strings.TrimSuffix(opts.PublicURL, "/")
	if s.base == "" {
		s.base = "http://" + ln.Addr().String()
	}

	s.store = odata.NewStoreWithUsers(opts.Scale, opts.Users, s.now())
	if opts.Before262 {
		s.store.DropAggregateTimestamps()
	}
	kr := <-keyCh
	if kr.err != nil {
		_ = ln.Close()
		return nil, kr.err
	}
	s.keys = kr.kr
	s.handler = s.routes()
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("erpsim: serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	s.log.Info("erpsim: started", "url", s.base, "scale", opts.Scale, "users", opts.Users)
	return s, nil
}

// URL is the instance base URL without a trailing slash, e.g. http://127.0.0.1:41234.
func (s *Sim) URL() string { return s.base }

// IdentityURL is the identity server's issuer, URL()+"/id".
func (s *Sim) IdentityURL() string { return s.base + "/id" }

// ODataURL is the Domain API service root, URL()+"/api/domain/odata/".
func (s *Sim) ODataURL() string { return s.base + "/api/domain/odata/" }

// Handler serves the whole instance; useful to embed erpsim in another server.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close stops the server. Requests held by latency or queued by the limiter
// are released; connections still open after a short grace period are closed.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			// Grace period over: cut the remaining connections.
			s.closeErr = s.srv.Close()
		}
	})
	return s.closeErr
}

// SetLimits replaces the session limits; running sessions use them from their next request.
func (s *Sim) SetLimits(l Limits) {
	l = l.withDefaults()
	s.limits.Store(&l)
}

// user finds a demo user or one of the generated portal users by login.
func (s *Sim) user(login string) (fixture.User, bool) { return fixture.UserIn(login, s.opts.Users) }

// Users is the number of generated portal users (Options.Users).
func (s *Sim) Users() int { return s.opts.Users }

// currentLimits returns the limits with defaults applied.
func (s *Sim) currentLimits() Limits { return *s.limits.Load() }

// SetClock replaces the clock used for token times, session expiry and rate windows.
func (s *Sim) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clock.Store(&now)
}

func (s *Sim) now() time.Time { return (*s.clock.Load())() }

// SetTokenLifetime changes the lifetime of the access tokens issued from now
// on (0 restores Options.TokenLifetime), so a test can hand out a token that
// is about to expire and then let its refresh bring a normal one.
func (s *Sim) SetTokenLifetime(d time.Duration) {
	if d <= 0 {
		d = s.opts.TokenLifetime
	}
	s.tokLife.Store(int64(d))
}

func (s *Sim) tokenLifetime() time.Duration { return time.Duration(s.tokLife.Load()) }

// RotateKey adds a new signing key and returns its kid. Older keys stay in the
// JWKS, and tokens they signed stay valid until they expire.
func (s *Sim) RotateKey() (kid string) {
	kid, err := s.keys.rotate()
	if err != nil {
		// Key generation fails only if the system's randomness source does.
		panic(err)
	}
	return kid
}

// routes assembles the instance: every request goes through the request log
// and the fault injector; the Domain API adds authentication, sessions and limits.
func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.identityRoutes(mux)
	mux.HandleFunc("GET /sys/auto-discovery", s.handleAutoDiscovery)
	mux.HandleFunc("GET /tools/auto-discovery", s.handleAutoDiscovery)
	mux.HandleFunc("GET /tools/ver", s.handleVersion)
	mux.HandleFunc("GET /profile/me", s.handleProfile)
	domain := http.StripPrefix("/api/domain/odata", odata.NewHandler(s.store, odata.Options{
		ServiceRoot: s.ODataURL(),
		PartLatency: s.latency.part,
		Part:        s.injectPartFaults,
		Now:         s.now,
	}))
	mux.Handle("/api/domain/odata/", s.domainMiddleware(domain))
	return s.observe(s.injectFaults(mux))
}
