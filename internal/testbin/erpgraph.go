package testbin

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// BuildArgs are the Dockerfile's `go build` arguments (with CGO_ENABLED=0):
// tests that run erpgraph as its own process run the binary the image ships.
var BuildArgs = []string{"build", "-trimpath", "-ldflags=-s -w"}

// BuildErpgraph builds erpgraph like the Dockerfile does, once per test
// binary, and returns the binary's path (call RemoveBuilds from TestMain).
// Under -short it skips t.
func BuildErpgraph(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the erpgraph binary")
	}
	build.once.Do(func() { build.bin, build.err = buildErpgraph() })
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// build is the binary BuildErpgraph made: building erpgraph from a cold
// cache takes a minute on two cores, so the tests of a package share one.
var build struct {
	once     sync.Once
	dir, bin string
	err      error
}

func buildErpgraph() (string, error) {
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(mod)) == "" {
		return "", fmt.Errorf("go env GOMOD: %v (%q)", err, mod)
	}
	if build.dir, err = os.MkdirTemp("", "erpgraph-build-"); err != nil {
		return "", err
	}
	bin := filepath.Join(build.dir, "erpgraph")
	cmd := exec.Command("go", append(BuildArgs, "-o", bin, ".")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// RemoveBuilds removes what BuildErpgraph built; TestMain calls it after
// the tests ran.
func RemoveBuilds() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// Erpgraph is one running `erpgraph serve` process.
type Erpgraph struct {
	URL        string // where it listens, from its startup banner
	MetricsURL string // its metrics endpoint, "" when ERPGRAPH_METRICS_ADDR is unset

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the process's end, once exited is closed
	log    lockedBuffer
}

// StartErpgraph runs bin serve with exactly env (nothing of the test's own
// environment) and returns once it printed its banner (it listens then).
// The process is killed when t ends if it still runs; Stop ends it cleanly.
func StartErpgraph(t testing.TB, bin string, env []string) *Erpgraph {
	t.Helper()
	p := &Erpgraph{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = env
	p.cmd.Stderr = &p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan when the test binary dies
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("erpgraph: %v", err)
	}
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		inBanner := true
		for sc.Scan() && inBanner {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "erpgraph is listening on "); ok {
				p.URL = strings.TrimSpace(rest)
			}
			if rest, ok := strings.CutPrefix(line, "  Metrics"); ok {
				p.MetricsURL = strings.TrimSpace(rest)
			}
			if strings.HasPrefix(line, "  Domain API") { // the banner's last line about this process
				inBanner = false
				close(banner)
			}
		}
		if inBanner {
			close(banner)
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	<-banner
	if p.URL == "" {
		<-p.exited
		t.Fatalf("erpgraph printed no banner (%v):\n%s", p.err, p.Log())
	}
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// Signal sends sig to the process.
func (p *Erpgraph) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed once the process has ended; Err then says how.
func (p *Erpgraph) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended (nil: exit status 0); valid once Exited is closed.
func (p *Erpgraph) Err() error { return p.err }

// Stop sends SIGINT and waits for the process to end; it reports an unclean end on t.
func (p *Erpgraph) Stop(t testing.TB) {
	t.Helper()
	_ = p.Signal(os.Interrupt)
	<-p.exited
	if p.err != nil {
		t.Errorf("erpgraph did not stop cleanly on SIGINT: %v\n%s", p.err, p.Log())
	}
}

// Log is what the process wrote to stderr so far (its JSON log).
func (p *Erpgraph) Log() string { return p.log.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// PromtoolCheckMetrics lints a scrape with `promtool check metrics`
// (Debian's prometheus package).
func PromtoolCheckMetrics(t testing.TB, raw []byte) {
	t.Helper()
	cmd := exec.Command(Path(t, "promtool", "prometheus"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
