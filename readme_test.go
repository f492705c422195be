package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/app"
)

var update = flag.Bool("update", false, "rewrite README.md's generated sections")

const (
	settingsBegin = "<!-- settings:begin (generated from app.Settings by `go test -run TestREADME -update .`) -->"
	settingsEnd   = "<!-- settings:end -->"
)

// TestREADME_Settings keeps the README's configuration table equal to the
// settings erpgraph actually reads, so the documentation cannot go stale.
func TestREADME_Settings(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, settingsBegin), strings.Index(readme, settingsEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", settingsBegin, settingsEnd)
	}
	want := settingsBegin + "\n" + settingsTable(app.Settings()) + settingsEnd
	if got := readme[i : j+len(settingsEnd)]; got != want {
		if *update {
			if err := os.WriteFile("README.md", []byte(readme[:i]+want+readme[j+len(settingsEnd):]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's configuration table is stale: run `go test -run TestREADME -update .`")
	}
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
