package deploy_test

import (
	"debug/elf"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/internal/testbin"
)

// buildCommand is the Dockerfile's build step; the test runs the same one
// (testbin.BuildArgs with CGO_ENABLED=0).
const buildCommand = `CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/erpgraph .`

// The Dockerfile builds a static binary into a distroless static image
// that runs as a non-root user. No image can be built or pulled here, so
// the test builds the same binary with the same command, checks that it
// is statically linked, starts it in dev mode and asks /healthz.
func TestImage_StaticBinaryRuns(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(b)
	if !strings.Contains(dockerfile, "RUN "+buildCommand+"\n") {
		t.Errorf("the Dockerfile does not build with %q", buildCommand)
	}
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(dockerfile, -1)
	if len(froms) == 0 || !strings.HasPrefix(froms[len(froms)-1][1], "gcr.io/distroless/static") {
		t.Errorf("the final stage is %v, want gcr.io/distroless/static", froms)
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(dockerfile, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("the image's USER is %v, want a non-root user", users)
	}
	bin := testbin.BuildErpgraph(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader (PT_INTERP): not static")
		}
	}
	f.Close()
	if len(libs) > 0 {
		t.Errorf("the binary links %v: not static", libs)
	}

	// Dev mode on free ports: erpgraph prints its URL once it listens.
	p := testbin.StartErpgraph(t, bin, []string{"ERPGRAPH_ADDR=127.0.0.1:0", "ERPSIM_ADDR=127.0.0.1:0", "ERPGRAPH_LOG_LEVEL=warn", "ERPGRAPH_AUDIT_LOG=off"})
	t.Cleanup(func() { p.Stop(t) })
	url := p.URL
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %d", res.StatusCode)
	}
}
