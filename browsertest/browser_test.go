// Package browsertest drives the example portal and the playground in a
// real headless Chromium (Debian's chromium package, never a downloaded
// browser) through playwright-core, against erpgraph running in this test
// process on a loopback port. It needs node and chromium: under CI=true a
// missing one fails the test (.ci/run installs chromium); elsewhere the
// tests skip and say why.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

const chromiumPath = "/usr/bin/chromium"

var (
	installOnce sync.Once
	installErr  error
)

// needBrowser returns the node binary, installing playwright-core (pinned
// in package-lock.json) on first use.
func needBrowser(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node"
	case fileMissing(chromiumPath):
		missing = chromiumPath + " (apt-get install chromium)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser test: %s is missing; .ci/run installs it", missing)
		}
		t.Skipf("browser test skipped: %s is missing (CI installs it and runs this test)", missing)
	}
	installOnce.Do(func() {
		if !fileMissing("node_modules/playwright-core/package.json") {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if installErr = cmd.Run(); installErr != nil {
			installErr = &installError{err: installErr, out: out.String()}
		}
	})
	if installErr != nil {
		t.Fatalf("npm ci: %v", installErr)
	}
	return node
}

type installError struct {
	err error
	out string
}

func (e *installError) Error() string { return e.err.Error() + ": " + e.out }

func fileMissing(p string) bool {
	_, err := os.Stat(p)
	return err != nil
}

// start runs erpgraph in dev mode (erpsim in-process) on a free port.
func start(t *testing.T, env map[string]string) *app.App {
	t.Helper()
	cfg, err := app.ConfigFromEnv(func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.SimAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.AuditLog = "off"
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = a.Close()
	})
	return a
}

// runScript runs a check script in node with env, streaming its output to the test log.
func runScript(t *testing.T, node, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), append([]string{"CHROMIUM=" + chromiumPath}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	if !strings.Contains(out.String(), "PASS ") {
		t.Fatalf("%s ended without PASS", script)
	}
}

// latestOrders asks erpgraph (with a Bearer token) for the user's latest
// order numbers, which the portal's dashboard must show.
func latestOrders(t *testing.T, a *app.App, login string) []string {
	t.Helper()
	tok, err := a.Sim().Login(context.Background(), fixture.PlaygroundClientID, login, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"query": `{ salesOrders(first: 5, orderBy: {field: DOCUMENT_DATE, direction: DESC}) { nodes { documentNo } } }`})
	req, _ := http.NewRequest(http.MethodPost, a.URL()+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			SalesOrders struct {
				Nodes []struct{ DocumentNo string } `json:"nodes"`
			} `json:"salesOrders"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var nos []string
	for _, n := range out.Data.SalesOrders.Nodes {
		nos = append(nos, n.DocumentNo)
	}
	if len(nos) == 0 {
		t.Fatalf("%s has no orders to show", login)
	}
	return nos
}

// TestBrowser_Portal runs with writes on, so the portal also places an
// order; erpsim must see exactly that one write.
func TestBrowser_Portal(t *testing.T) {
	node := needBrowser(t)
	a := start(t, map[string]string{"ERPGRAPH_WRITES": "on"})
	script, _ := filepath.Abs("portal.mjs")
	orders := latestOrders(t, a, fixture.OwnerLogin)
	before := a.Sim().Stats().Writes
	runScript(t, node, script, "ERPGRAPH_URL="+a.URL(), "LOGIN="+fixture.OwnerLogin, "WRITES=on",
		"EXPECT_ORDERS="+strings.Join(orders, ","))
	if got := a.Sim().Stats().Writes - before; got != 1 {
		t.Errorf("erpsim saw %d writes from the portal, want 1 (the order placed)", got)
	}
}

func TestBrowser_Playground(t *testing.T) {
	node := needBrowser(t)
	a := start(t, nil)
	script, _ := filepath.Abs("playground.mjs")
	runScript(t, node, script, "ERPGRAPH_URL="+a.URL())
}
