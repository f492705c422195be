package main

import (
	"context"
	"fmt"
	"io"

	"github.com/erpgraph/erpgraph/app"
)

// runServe is `erpgraph serve`: configuration from the environment and
// flags, the wired application, the startup banner, and serving until ctx
// ends (SIGINT/SIGTERM), with a graceful shutdown.
func runServe(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	a, err := app.NewFromEnv(ctx, getenv, args)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprint(stdout, a.Banner())
	return a.Serve(ctx)
}
