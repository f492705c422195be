package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// runToken signs a demo user in at an erpsim (the one `erpgraph` starts in
// dev mode, or `erpgraph sim`) with the real Authorization Code + PKCE flow
// and prints the access token, so curl and scripts can call erpgraph:
//
//	TOKEN=$(go run . token anna.petrova)
//
// It works only against erpsim: a real identity server has no scriptable
// login form, and its users sign in through the playground or the frontend.
func runToken(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	simURL := fs.String("sim", simBaseURL(getenv), "erpsim's base URL (default from ERPSIM_URL, else ERPSIM_ADDR, the address `erpgraph` starts erpsim on)")
	clientID := fs.String("client", app.DefaultPlaygroundClientID, "trusted application to sign in to")
	password := fs.String("password", fixture.DemoPassword, "the user's password")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: erpgraph token [flags] LOGIN\n\nSigns a demo user in at erpsim and prints an access token. Demo logins:\n")
		for _, u := range fixture.Users() {
			if u.Password != "" {
				fmt.Fprintf(fs.Output(), "  %s\n", u.Login)
			}
		}
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("token: name one login")
	}
	var client fixture.App
	for _, a := range fixture.Apps() {
		if a.ClientID == *clientID {
			client = a
		}
	}
	if client.ClientID == "" {
		return fmt.Errorf("token: unknown client %q", *clientID)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := erpsim.SignIn(ctx, *simURL, client, fs.Arg(0), *password)
	if err != nil {
		if strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("token: no erpsim at %s (start `go run .` or `go run . sim` first): %w", *simURL, err)
		}
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok.AccessToken)
	return nil
}

// simBaseURL is where `erpgraph token` looks for erpsim: ERPSIM_URL, else
// ERPSIM_ADDR (where dev mode starts it, as the settings table says; an
// unspecified host means this machine), else erpsim's usual address.
func simBaseURL(getenv func(string) string) string {
	if u := strings.TrimSpace(getenv("ERPSIM_URL")); u != "" {
		return strings.TrimRight(u, "/")
	}
	addr := strings.TrimSpace(getenv("ERPSIM_ADDR"))
	if addr == "" {
		return "http://" + app.DefaultSimAddr
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, port)
	}
	return "http://" + addr
}
