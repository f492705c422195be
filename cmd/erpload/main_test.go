package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
)

func TestParse_Refuses(t *testing.T) {
	for _, args := range [][]string{
		{"-users", "0"}, {"-users", "5000"}, {"-duration", "0s"}, {"-duration", "2h"}, {"-latency", "-1s"}, {"-scale", "0"},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%v) accepted", args)
		}
	}
}

// TestRun drives a short real run and checks the report is complete and the operations succeeded; the numbers
// themselves are the command's output, not assertions.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-users", "2", "-duration", "1s"}, &out); err != nil {
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
	for _, line := range []string{`throughput: +[\d.]+ ops/s`, `latency: +p50 \S+ +p90 \S+ +p99`, `upstream: +[\d.]+ HTTP requests/op`, `\d+ × 429`} {
		if !regexp.MustCompile(line).MatchString(out.String()) {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}
}
