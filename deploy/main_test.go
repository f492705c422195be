package deploy_test

import (
	"os"
	"testing"

	"github.com/erpgraph/erpgraph/internal/testbin"
)

// TestMain removes the erpgraph binary the image test and the three-replica test share (testbin.BuildErpgraph).
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.RemoveBuilds()
	os.Exit(code)
}
