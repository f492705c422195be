package main

import (
	"context"
	"errors"
	"io"
)

// runSim is replaced by the erpsim command (issue 2).
func runSim(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	return errors.New("sim: not wired yet")
}
