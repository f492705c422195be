package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestMain lets the test binary be erpload's child process too: run starts os.Executable (this binary) with
// childEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := runChild(os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString("erpload child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParse_Refuses(t *testing.T) {
	for _, args := range [][]string{
		{"-users", "0"}, {"-users", "5000"}, {"-duration", "0s"}, {"-duration", "2h"}, {"-latency", "-1s"}, {"-scale", "0"},
		{"-part-latency", "-1ms"}, {"stray"},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%v) accepted", args)
		}
	}
}

// -distinct signs every client in as its own generated portal user, never one of the dashboard-less Basic ones.
func TestParse_Distinct(t *testing.T) {
	o, err := parse([]string{"-distinct", "-users", "25"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range o.logins {
		seen[l] = true
	}
	if len(o.logins) != 25 || len(seen) != 25 || o.generate < 25 || seen["portal.user010"] || !seen["portal.user011"] {
		t.Errorf("%d logins (%d distinct), %d generated: %v", len(o.logins), len(seen), o.generate, o.logins)
	}
}

// checkRun runs erpload and checks the report is complete and the operations succeeded; the numbers themselves
// are the command's output, not assertions.
func checkRun(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`operations: +(\d+) ok, (\d+) failed`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no operations line in:\n%s", out.String())
	}
	ok, _ := strconv.Atoi(m[1])
	if ok == 0 || m[2] != "0" {
		t.Errorf("%s ok, %s failed:\n%s", m[1], m[2], out.String())
	}
	for _, line := range []string{`throughput: +[\d.]+ ops/s`, `latency: +p50 \S+ +p90 \S+ +p99`, `upstream: +[\d.]+ HTTP requests/op`,
		`\d+ × 429`, `reads: +[\d.]+ per op`, `cpu: +[\d.]+ s per 1000 ops`, `memory: +\S+ RSS \d+ MiB`} {
		if !regexp.MustCompile(line).MatchString(out.String()) {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}
	return out.String()
}

func TestRun(t *testing.T) {
	checkRun(t, "-users", "2", "-duration", "1s", "-inprocess")
}

// A short distinct run, erpgraph in its child process: every client signs in as its own user and completes
// operations.
func TestRun_Distinct(t *testing.T) {
	out := checkRun(t, "-users", "3", "-duration", "1s", "-distinct", "-latency", "1ms", "-part-latency", "1ms")
	for _, line := range []string{`each client a different user`, `erpgraph cpu: +[\d.]+ s per 1000 ops \(its own process`,
		`clients: +3 of 3 completed at least one op`} {
		if !regexp.MustCompile(line).MatchString(out) {
			t.Errorf("report lacks %q:\n%s", line, out)
		}
	}
}
