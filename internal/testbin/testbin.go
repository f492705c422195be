// Package testbin finds the external programs some tests need (promtool,
// redis-server, haproxy). Outside CI a missing program skips the test and
// says how to install it; under CI=true it fails the test, since CI
// (.ci/run) installs them.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Path is the path of program, from the Debian package pkg. It skips or
// fails t when the program is missing (see the package doc).
func Path(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	// Debian installs daemons such as haproxy in /usr/sbin, which is on
	// root's PATH but often not on a user's.
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if path, err := exec.LookPath(filepath.Join(dir, program)); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install %s); CI needs it", program, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s): skipping outside CI", program, pkg)
	return ""
}
