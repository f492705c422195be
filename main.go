// Command erpgraph is a GraphQL backend-for-frontend for ERP.net.
//
// Usage:
//
//	erpgraph [serve] [flags]   serve GraphQL (default; with no ERP.net configured it starts erpsim in-process)
//	erpgraph sim [flags]       run erpsim, the ERP.net emulator, alone
//	erpgraph token LOGIN       sign a demo user in at erpsim and print an access token
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, args, os.Stdout, os.Getenv)
	case "sim":
		err = runSim(ctx, args, os.Stdout, os.Getenv)
	case "token":
		err = runToken(ctx, args, os.Stdout, os.Getenv)
	case "help":
		usage()
		return
	default:
		usage()
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "erpgraph:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `erpgraph: a GraphQL backend-for-frontend for ERP.net

Usage:
  erpgraph [serve] [flags]   serve GraphQL (with no ERP.net configured, starts erpsim in-process)
  erpgraph sim [flags]       run erpsim, the ERP.net emulator, alone
  erpgraph token LOGIN       sign a demo user in at erpsim and print an access token (for curl)

Run "erpgraph serve -h" or "erpgraph sim -h" for the flags; every flag also has an environment variable.
`)
}
