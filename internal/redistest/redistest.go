// Package redistest runs a real redis-server for tests: its own process on
// a Unix socket in the test's temporary directory (no port to collide on,
// no state shared with other tests), stopped when the test ends.
package redistest

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/erpgraph/erpgraph/internal/testbin"
)

// Server is one redis-server process.
type Server struct {
	t      testing.TB
	bin    string
	dir    string
	socket string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts redis-server (Debian package redis-server); see testbin for
// what happens when it is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{t: t, bin: testbin.Path(t, "redis-server", "redis-server"), dir: dir, socket: filepath.Join(dir, "redis.sock")}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's address for go-redis (and ERPGRAPH_REDIS_URL).
func (s *Server) URL() string { return "unix://" + s.socket }

// Stop ends the server (Redis is down until Start again); it waits for the
// process to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped server again on the same socket, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// start runs redis-server in the foreground, without persistence, and
// returns once it logs that it accepts connections.
func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "--port", "0", "--unixsocket", s.socket, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", "", "--loglevel", "notice")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan when the test binary dies
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	ready := make(chan struct{})
	var log strings.Builder
	go func() {
		defer close(s.exited)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(strings.ToLower(sc.Text()), "ready to accept connections") {
					signalled = true
					close(ready)
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		if !signalled {
			close(ready)
		}
	}()
	<-ready
	select {
	case <-s.exited:
		s.cmd = nil
		s.t.Fatalf("redis-server exited before it was ready:\n%s", log.String())
	default:
	}
}
