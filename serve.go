package main

import (
	"context"
	"errors"
	"io"
)

// runServe is replaced by the server wiring (issue 4).
func runServe(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	return errors.New("serve: not wired yet")
}
