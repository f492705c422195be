package main

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/errcode"
)

var update = flag.Bool("update", false, "rewrite README.md's generated sections")

const (
	settingsBegin = "<!-- settings:begin (generated from app.Settings by `go test -run TestREADME -update .`) -->"
	settingsEnd   = "<!-- settings:end -->"
	errorsBegin   = "<!-- errors:begin (generated from errcode.All by `go test -run TestREADME -update .`) -->"
	errorsEnd     = "<!-- errors:end -->"
)

// TestREADME_Settings keeps the README's configuration table equal to the
// settings erpgraph actually reads, so the documentation cannot go stale.
func TestREADME_Settings(t *testing.T) {
	generated(t, "configuration table", settingsBegin, settingsEnd, settingsTable(app.Settings()))
}

// TestREADME_Errors keeps the README's error table equal to the registry of
// extensions.code values.
func TestREADME_Errors(t *testing.T) {
	generated(t, "error table", errorsBegin, errorsEnd, errorsTable(errcode.All()))
}

// generated checks (or, with -update, rewrites) the README section between
// the markers begin and end.
func generated(t *testing.T, what, begin, end, body string) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", begin, end)
	}
	want := begin + "\n" + body + end
	if got := readme[i : j+len(end)]; got != want {
		if *update {
			if err := os.WriteFile("README.md", []byte(readme[:i]+want+readme[j+len(end):]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's %s is stale: run `go test -run TestREADME -update .`", what)
	}
}

func errorsTable(entries []errcode.Entry) string {
	var sb strings.Builder
	sb.WriteString("| code | HTTP | retry | meaning |\n|---|---|---|---|\n")
	for _, e := range entries {
		status := "200 (field error)"
		switch {
		case e.Status != 0:
			status = strconv.Itoa(e.Status)
		case e.Request:
			status = "200, 400 with `graphql-response+json`"
		}
		retry := "no"
		if e.Retry {
			retry = "yes"
		}
		sb.WriteString("| `" + e.Code + "` | " + status + " | " + retry + " | " + strings.ReplaceAll(e.Meaning, "|", `\|`) + " |\n")
	}
	return sb.String()
}

func settingsTable(settings []app.Setting) string {
	var sb strings.Builder
	sb.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, s := range settings {
		fl := ""
		if s.Flag != "" {
			fl = "`-" + s.Flag + "`"
		}
		def := ""
		if s.Default != "" {
			def = cell(s.Default)
		}
		sb.WriteString("| `" + s.Env + "` | " + fl + " | " + def + " | " + cell(s.Help) + " |\n")
	}
	return sb.String()
}

// TestREADME_GoVersion keeps the Go version the README names equal to the
// one go.mod needs.
func TestREADME_GoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			version = strings.TrimSpace(v)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if version == "" || !strings.Contains(string(readme), "needs Go "+version+" or newer") {
		t.Errorf("README.md does not say it needs Go %s (go.mod's go line)", version)
	}
}
