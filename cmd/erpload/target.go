package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/internal/loadclient"
)

// --- erpgraph in this process (-inprocess) ---

type inProcess struct {
	app     *app.App
	stop    context.CancelFunc
	served  chan error
	profile *os.File
	path    string
}

func startInProcess(ctx context.Context, c erpgraphConfig) (*inProcess, error) {
	a, err := app.New(ctx, c.appConfig(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	serveCtx, stop := context.WithCancel(ctx)
	p := &inProcess{app: a, stop: stop, served: make(chan error, 1), path: c.CPUProfile}
	go func() { p.served <- a.Serve(serveCtx) }()
	return p, nil
}

func (p *inProcess) URL() string                     { return p.app.URL() }
func (p *inProcess) Usage() (loadclient.Usage, bool) { return loadclient.SelfUsage() }
func (p *inProcess) RSS() int64                      { return loadclient.RSS() }
func (p *inProcess) StartProfile() error {
	f, err := startProfile(p.path)
	p.profile = f
	return err
}
func (p *inProcess) StopProfile() error { return stopProfile(p.profile) }
func (p *inProcess) Close() error {
	p.stop()
	<-p.served
	return p.app.Close()
}

func startProfile(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return f, nil
}

func stopProfile(f *os.File) error {
	if f == nil {
		return errors.New("cpu profile: not started")
	}
	pprof.StopCPUProfile()
	return f.Close()
}

// --- erpgraph in a child process (the default) ---

// childEnv starts this program as the child; childConfigEnv carries its erpgraphConfig as JSON.
const (
	childEnv       = "ERPLOAD_CHILD"
	childConfigEnv = "ERPLOAD_CHILD_CONFIG"
)

// The parent and the child speak in lines: the child prints "ready URL" once it serves; then for each line the
// parent writes ("usage", "profile start", "profile stop") it answers one line ("usage CPU-NS PEAK-RSS RSS", "ok"
// or "error TEXT"). When its stdin ends, the child shuts erpgraph down and exits.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *tail
	url    string

	mu sync.Mutex // one exchange at a time
}

func startChild(ctx context.Context, c erpgraphConfig) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("erpgraph child: %w", err)
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"=1", childConfigEnv+"="+string(cfg))
	ch := &child{cmd: cmd, stderr: &tail{max: 4 << 10}}
	cmd.Stderr = ch.stderr
	if ch.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	ch.lines = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("erpgraph child: %w", err)
	}
	line, err := ch.read()
	if url, ok := strings.CutPrefix(line, "ready "); err == nil && ok {
		ch.url = url
		return ch, nil
	}
	_ = ch.Close()
	return nil, fmt.Errorf("erpgraph child did not start: %q %v: %s", line, err, ch.stderr)
}

func (c *child) read() (string, error) {
	if !c.lines.Scan() {
		return "", cmpErr(c.lines.Err(), io.ErrUnexpectedEOF)
	}
	return c.lines.Text(), nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func (c *child) ask(cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.stdin, cmd); err != nil {
		return "", fmt.Errorf("erpgraph child: %w: %s", err, c.stderr)
	}
	line, err := c.read()
	if err != nil {
		return "", fmt.Errorf("erpgraph child: %w: %s", err, c.stderr)
	}
	if msg, bad := strings.CutPrefix(line, "error "); bad {
		return "", errors.New(msg)
	}
	return line, nil
}

func (c *child) URL() string { return c.url }

func (c *child) usage() (u loadclient.Usage, rss int64, ok bool) {
	line, err := c.ask("usage")
	f := strings.Fields(line)
	if err != nil || len(f) != 4 || f[0] != "usage" {
		return u, 0, false
	}
	cpu, err1 := strconv.ParseInt(f[1], 10, 64)
	peak, err2 := strconv.ParseInt(f[2], 10, 64)
	rss, err3 := strconv.ParseInt(f[3], 10, 64)
	if cpu < 0 || errors.Join(err1, err2, err3) != nil {
		return u, 0, false
	}
	return loadclient.Usage{CPU: time.Duration(cpu), PeakRSS: peak}, rss, true
}

func (c *child) Usage() (loadclient.Usage, bool) { u, _, ok := c.usage(); return u, ok }
func (c *child) RSS() int64                      { _, rss, _ := c.usage(); return rss }
func (c *child) StartProfile() error             { _, err := c.ask("profile start"); return err }
func (c *child) StopProfile() error              { _, err := c.ask("profile stop"); return err }

// Close ends the child: its stdin closes, it shuts erpgraph down; after 10 s it is killed.
func (c *child) Close() error {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		return <-done
	}
}

// runChild is the child: erpgraph as configured in childConfigEnv, answering the parent's lines.
func runChild(in io.Reader, out io.Writer) error {
	var c erpgraphConfig
	if err := json.Unmarshal([]byte(os.Getenv(childConfigEnv)), &c); err != nil {
		return fmt.Errorf("%s: %w", childConfigEnv, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := startInProcess(ctx, c)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintln(out, "ready", p.URL())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var err error
		answer := "ok"
		switch sc.Text() {
		case "usage":
			u, _ := loadclient.SelfUsage()
			answer = fmt.Sprintf("usage %d %d %d", u.CPU.Nanoseconds(), u.PeakRSS, loadclient.RSS())
		case "profile start":
			err = p.StartProfile()
		case "profile stop":
			err = p.StopProfile()
		default:
			err = fmt.Errorf("unknown command %q", sc.Text())
		}
		if err != nil {
			answer = "error " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Fprintln(out, answer)
	}
	return nil
}

// tail keeps the last max bytes written to it, for the child's error output.
type tail struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}
