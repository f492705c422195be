package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseSimConfig(t *testing.T) {
	c, err := parseSimConfig([]string{"-rpm", "50"}, io.Discard, envOf(map[string]string{
		"ERPSIM_ADDR": "127.0.0.1:9999", "ERPSIM_SCALE": "3", "ERPSIM_RPM": "10", "ERPSIM_LATENCY": "20ms", "ERPSIM_UNLIMITED": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:9999" || c.scale != 3 || c.rpm != 50 || c.latency != 20*time.Millisecond || c.unlimited {
		t.Errorf("config %+v (flags must override the environment)", c)
	}
	if c.limits().RequestsPerMinute != 50 {
		t.Errorf("limits %+v", c.limits())
	}
	c, err = parseSimConfig(nil, io.Discard, envOf(nil))
	if err != nil || c.addr != "127.0.0.1:8089" || c.scale != 1 || c.tokenLifetime != time.Hour {
		t.Errorf("defaults %+v %v", c, err)
	}
	if c, _ := parseSimConfig([]string{"-unlimited"}, io.Discard, envOf(nil)); c.limits().Licenses != -1 {
		t.Errorf("-unlimited limits %+v", c.limits())
	}

	_, err = parseSimConfig([]string{"-scale", "0", "-licenses", "-5"}, io.Discard, envOf(map[string]string{"ERPSIM_LATENCY": "fast"}))
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"ERPSIM_LATENCY", "scale 0", "licenses"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := parseSimConfig([]string{"-h"}, io.Discard, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// lockedBuffer lets the test read what runSim prints while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{} // gets a value after every write
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.ch <- struct{}{}:
	default:
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunSim(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{ch: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- runSim(ctx, []string{"-addr", "127.0.0.1:0"}, out, envOf(nil)) }()

	odataRoot := regexp.MustCompile(`OData root\s+(http://\S+/api/domain/odata/)`)
	var root string
	timeout := time.After(30 * time.Second)
	for root == "" {
		select {
		case <-out.ch:
			if m := odataRoot.FindStringSubmatch(out.String()); m != nil && strings.Contains(out.String(), "Ctrl-C") {
				root = m[1]
			}
		case err := <-done:
			t.Fatalf("runSim returned early: %v\n%s", err, out)
		case <-timeout:
			t.Fatalf("no banner:\n%s", out)
		}
	}
	banner := out.String()
	for _, want := range []string{"com.erpgraph/bff", "erpgraph-demo-secret", "anna.petrova", "Owner at customer 1", "no customer access", `password "demo"`} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q", want)
		}
	}
	resp, err := http.Get(strings.TrimSuffix(root, "/api/domain/odata/") + "/sys/auto-discovery")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("auto-discovery of the running sim: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runSim after Ctrl-C: %v", err)
	}
	if !strings.Contains(out.String(), "erpsim: stopped") {
		t.Error("no stop message")
	}
}
