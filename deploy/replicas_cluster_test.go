package deploy_test

// The three-replica test runs erpgraph as an operator runs several replicas: one erpsim (the ERP.net instance,
// over TCP), one real redis-server, three erpgraph processes (the binary the image ships, configured by
// environment) and a real HAProxy in front of them checking /readyz. Every request of the tests goes through
// HAProxy.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/loadclient"
	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/internal/testbin"
)

// The replicas' rate limit: small enough that one user crosses it in a test, large enough for the steady load
// (each load user sends under rateLimit requests per second).
const (
	rateLimit = 2  // ERPGRAPH_RATE_LIMIT, requests per second per user
	rateBurst = 15 // ERPGRAPH_RATE_BURST
)

// The health checks and the drain: HAProxy asks /readyz every checkInterval and takes a replica out at the first
// failed answer; a replica keeps serving for shutdownDelay after SIGTERM with /readyz already 503, which must be
// well over checkInterval plus one check's time. Each check costs one ERP.net request (readiness pings the
// Domain API): 120 a minute per replica here, a fifth of the session's 600.
const (
	checkInterval = 500 * time.Millisecond
	shutdownDelay = 2500 * time.Millisecond
)

// cluster is the whole setup.
type cluster struct {
	t        *testing.T
	sim      *erpsim.Sim
	redis    *redistest.Server
	bin      string
	env      []string // every replica's environment
	replicas []*testbin.Erpgraph
	lb       *haproxy
	url      string // HAProxy's frontend
	http     *http.Client
	seen     *recorder // every answer HAProxy gave the tests
	logins   []string  // generated portal users that see orders
	started  []started // every replica process, also the ones a restart replaced (their logs)
}

type started struct {
	name string
	p    *testbin.Erpgraph
}

// replicaNames are the servers of HAProxy's backend, in the order of cluster.replicas.
var replicaNames = []string{"r1", "r2", "r3"}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	haproxyBin := testbin.Path(t, "haproxy", "haproxy")
	c := &cluster{t: t, redis: redistest.Start(t), bin: testbin.BuildErpgraph(t), seen: &recorder{}}
	logins, generate := loadclient.DistinctLogins(32)
	c.logins = logins
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// HAProxy's frontend socket first: its URL is the replicas' public URL, registered at erpsim as the
	// Trusted Application's sign-in callback.
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.url = "http://" + front.Addr().String()
	apps := fixture.Apps()
	for i := range apps {
		if apps[i].ClientID == fixture.BFFClientID {
			apps[i].RedirectURIs = append(apps[i].RedirectURIs, c.url+"/auth/callback")
			apps[i].PostLogoutRedirectURIs = append(apps[i].PostLogoutRedirectURIs, c.url+"/")
		}
	}
	// ERP.net's default limits (1 request in flight and 600 a minute per session), and the licences
	// deploy/kubernetes asks for: two per replica, since a stopped replica's session keeps its slot.
	limits := erpsim.Limits{Licenses: 2 * len(replicaNames)}
	if c.sim, err = erpsim.Start(ctx, erpsim.Options{Users: generate, Apps: apps, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.sim.Close() })
	c.http = &http.Client{Timeout: time.Minute, Transport: c.seen.wrap(front.Addr().String(), &http.Transport{MaxIdleConnsPerHost: 64})}

	var k [32]byte
	_, _ = rand.Read(k[:])
	// What an operator sets on every replica (deploy/kubernetes has the same variables).
	c.env = []string{
		"ERP_INSTANCE_URL=" + c.sim.URL(), "ERP_CLIENT_ID=" + fixture.BFFClientID, "ERP_CLIENT_SECRET=" + fixture.BFFSecret,
		"ERPGRAPH_ADDR=127.0.0.1:0", "ERPGRAPH_METRICS_ADDR=127.0.0.1:0",
		"ERPGRAPH_PUBLIC_URL=" + c.url, "ERPGRAPH_TRUSTED_PROXIES=127.0.0.1",
		"ERPGRAPH_TRUSTED_CLIENT_IDS=" + fixture.BFFClientID + "," + fixture.PlaygroundClientID,
		"ERPGRAPH_REDIS_URL=" + c.redis.URL(),
		"ERPGRAPH_SESSIONS=on", "ERPGRAPH_SESSION_KEYS=" + base64.StdEncoding.EncodeToString(k[:]),
		"ERPGRAPH_WRITES=on",
		fmt.Sprintf("ERPGRAPH_RATE_LIMIT=%d", rateLimit), fmt.Sprintf("ERPGRAPH_RATE_BURST=%d", rateBurst),
		"ERPGRAPH_SHUTDOWN_DELAY=" + shutdownDelay.String(), "ERPGRAPH_SHUTDOWN_GRACE=10s",
		"ERPGRAPH_LOG_LEVEL=warn", "ERPGRAPH_AUDIT_LOG=off",
	}
	c.replicas = make([]*testbin.Erpgraph, len(replicaNames))
	var wg sync.WaitGroup
	for i := range replicaNames {
		wg.Go(func() { c.replicas[i] = testbin.StartErpgraph(t, c.bin, c.env) })
	}
	wg.Wait()
	for i, r := range c.replicas {
		c.started = append(c.started, started{replicaNames[i], r})
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range c.started {
				t.Logf("replica %s (%s) log:\n%s", s.name, s.p.URL, tail(s.p.Log(), 4000))
			}
		}
	})
	for _, r := range c.replicas {
		if r.URL == "" {
			t.FailNow() // StartErpgraph reported why
		}
	}
	c.lb = startHAProxy(t, haproxyBin, front, c.replicas)
	for _, name := range replicaNames {
		c.lb.waitState(name, "UP")
	}
	return c
}

// serviceSessions counts the ERP.net sessions erpgraph's service tokens opened at erpsim (none has been idle
// for erpsim's 20 minutes in a test, so each still holds a licence slot).
func (c *cluster) serviceSessions() int {
	sessions := map[string]bool{}
	for _, r := range c.sim.Requests() {
		if r.Session != "" && r.ClientID == fixture.BFFClientID {
			sessions[r.Session] = true
		}
	}
	return len(sessions)
}

// replica returns the process behind HAProxy server name.
func (c *cluster) replica(name string) *testbin.Erpgraph {
	for i, n := range replicaNames {
		if n == name {
			return c.replicas[i]
		}
	}
	c.t.Fatalf("no replica %s", name)
	return nil
}

// restart ends replica name with SIGTERM as Kubernetes does, checks that HAProxy took it out before it stopped
// serving, and starts it again (a new process on a new port, given to HAProxy through its runtime API), returning
// once HAProxy has it back in.
func (c *cluster) restart(t *testing.T, name string) {
	t.Helper()
	old := c.replica(name)
	if err := old.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Still serving while HAProxy notices /readyz went 503: it must be out before the delay ends.
	if !c.lb.waitStateUnless(name, "DOWN", old.Exited()) {
		t.Fatalf("%s exited before HAProxy took it out of the backend", name)
	}
	<-old.Exited()
	if err := old.Err(); err != nil {
		t.Errorf("%s did not shut down cleanly on SIGTERM: %v\n%s", name, err, tail(old.Log(), 2000))
	}
	fresh := testbin.StartErpgraph(t, c.bin, c.env)
	for i, n := range replicaNames {
		if n == name {
			c.replicas[i] = fresh
			c.started = append(c.started, started{name, fresh})
		}
	}
	c.lb.setAddr(name, fresh.URL)
	c.lb.waitState(name, "UP")
}

// haproxy is one HAProxy process and its runtime API (the admin stats socket).
type haproxy struct {
	t      *testing.T
	socket string
	cmd    *exec.Cmd
	exited chan struct{}
	stderr strings.Builder
}

// startHAProxy runs HAProxy in the foreground on the listening socket front (handed over as fd 3, so there is no
// port to pick and race for), balancing over replicas with health checks on /readyz.
func startHAProxy(t *testing.T, bin string, front net.Listener, replicas []*testbin.Erpgraph) *haproxy {
	t.Helper()
	dir := t.TempDir()
	h := &haproxy{t: t, socket: filepath.Join(dir, "admin.sock"), exited: make(chan struct{})}
	var servers, pins strings.Builder
	for i, r := range replicas {
		fmt.Fprintf(&servers, "\tserver %s %s\n", replicaNames[i], strings.TrimPrefix(r.URL, "http://"))
		// A test pins a request to one replica with X-Test-Replica (ignored while that replica is down).
		fmt.Fprintf(&pins, "\tuse-server %s if { req.hdr(X-Test-Replica) -m str %s }\n", replicaNames[i], replicaNames[i])
	}
	cfg := fmt.Sprintf(`global
	stats socket %s level admin
	stats timeout 30s

defaults
	mode http
	option forwardfor
	timeout connect 2s
	timeout client 1m
	timeout server 1m
	timeout check 5s
	# A refused or reset connection is tried again, on another replica.
	retries 3
	option redispatch 1

frontend erpgraph
	bind fd@3
	default_backend replicas

backend replicas
	balance roundrobin
	option httpchk GET /readyz
	http-check expect status 200
	default-server check inter %dms fall 1 rise 1
	http-response set-header X-Replica %%s
%s%s`, h.socket, checkInterval.Milliseconds(), pins.String(), servers.String())
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := front.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bin, "-db", "-f", path)
	h.cmd.ExtraFiles = []*os.File{f}
	h.cmd.Stdout, h.cmd.Stderr = &h.stderr, &h.stderr
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("haproxy: %v", err)
	}
	f.Close()
	front.Close() // HAProxy has its own descriptor of the socket
	go func() {
		_ = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill()
		<-h.exited
	})
	// Up once the runtime API answers.
	for {
		if _, err := h.command("show info"); err == nil {
			return h
		}
		select {
		case <-h.exited:
			t.Fatalf("haproxy exited:\n%s", h.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// command sends one command to the runtime API and returns its answer.
func (h *haproxy) command(cmd string) (string, error) {
	conn, err := net.Dial("unix", h.socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String(), sc.Err()
}

// stat is the row of HAProxy's stats (show stat) for svname of the backend ("BACKEND" for the backend as a
// whole), by column name.
func (h *haproxy) stat(svname string) map[string]string {
	h.t.Helper()
	out, err := h.command("show stat")
	if err != nil {
		h.t.Fatalf("haproxy show stat: %v", err)
	}
	lines := strings.Split(out, "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) >= len(header) && f[0] == "replicas" && f[1] == svname {
			row := map[string]string{}
			for i, name := range header {
				row[name] = f[i]
			}
			return row
		}
	}
	h.t.Fatalf("haproxy stats have no row %s:\n%s", svname, out)
	return nil
}

// state is the status HAProxy's health checks give server name: UP, DOWN, or a transition ("UP 1/2").
func (h *haproxy) state(name string) string { return h.stat(name)["status"] }

// waitState waits until HAProxy reports server name in state want.
func (h *haproxy) waitState(name, want string) {
	h.t.Helper()
	if !h.waitStateUnless(name, want, nil) {
		h.t.Fatalf("haproxy: %s never %s", name, want)
	}
}

// waitStateUnless waits until HAProxy reports server name in state want (true), or stop is closed first (false).
// Each look at the stats costs a round trip on the runtime API; there is no event to wait for instead.
func (h *haproxy) waitStateUnless(name, want string, stop <-chan struct{}) bool {
	h.t.Helper()
	deadline := time.After(time.Minute)
	for h.state(name) != want {
		select {
		case <-stop:
			return h.state(name) == want
		case <-h.exited:
			h.t.Fatalf("haproxy exited:\n%s", h.stderr.String())
		case <-deadline:
			h.t.Fatalf("haproxy: %s still %s after a minute, want %s", name, h.state(name), want)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// setAddr points server name at the replica listening on url.
func (h *haproxy) setAddr(name, url string) {
	h.t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := h.command(fmt.Sprintf("set server replicas/%s addr %s port %s", name, host, port))
	if err != nil || !strings.Contains(out, "changed") {
		h.t.Fatalf("haproxy set server %s addr %s port %s: %q %v", name, host, port, out, err)
	}
}

// recorder counts the answers the tests got from HAProxy, by status and by the replica that gave them (HAProxy's
// X-Replica header; "" for an answer of HAProxy's own).
type recorder struct {
	mu        sync.Mutex
	byStatus  map[int]int
	byReplica map[string]int
}

// wrap counts the answers of next from host (HAProxy; the browser's requests to erpsim pass uncounted).
func (r *recorder) wrap(host string, next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		res, err := next.RoundTrip(req)
		if err == nil && req.URL.Host == host {
			r.mu.Lock()
			if r.byStatus == nil {
				r.byStatus, r.byReplica = map[int]int{}, map[string]int{}
			}
			r.byStatus[res.StatusCode]++
			r.byReplica[res.Header.Get("X-Replica")]++
			r.mu.Unlock()
		}
		return res, err
	})
}

// counts returns the counts so far and starts new ones.
func (r *recorder) counts() (byStatus map[int]int, byReplica map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byStatus, byReplica = r.byStatus, r.byReplica
	r.byStatus, r.byReplica = nil, nil
	return byStatus, byReplica
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// tail is the end of a log, at most n bytes.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
