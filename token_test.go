package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

func TestRunToken(t *testing.T) {
	ctx := context.Background()
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	getenv := func(string) string { return "" }

	var out bytes.Buffer
	if err := runToken(ctx, []string{"-sim", sim.URL(), fixture.OwnerLogin}, &out, getenv); err != nil {
		t.Fatalf("runToken: %v", err)
	}
	token := strings.TrimSpace(out.String())

	// The printed token is a real access token of the playground app for that user.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sim.IdentityURL()+"/connect/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Sub string `json:"sub"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: HTTP %d, %v", resp.StatusCode, err)
	}
	if info.Sub != fixture.OwnerLogin {
		t.Errorf("token subject = %q, want %q", info.Sub, fixture.OwnerLogin)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", []string{"-sim", sim.URL(), "-password", "nope", fixture.OwnerLogin}, "refused"},
		{"unknown client", []string{"-sim", sim.URL(), "-client", "com.example/none", fixture.OwnerLogin}, "unknown client"},
		{"no login", []string{"-sim", sim.URL()}, "name one login"},
		{"no erpsim", []string{"-sim", "http://127.0.0.1:1", fixture.OwnerLogin}, "no erpsim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runToken(ctx, tt.args, &out, getenv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("runToken(%v) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

// `erpgraph token` finds erpsim where dev mode starts it: ERPSIM_ADDR, as the
// settings table says, unless ERPSIM_URL or -sim name another place.
func TestRunToken_ERPSIMAddr(t *testing.T) {
	ctx := context.Background()
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	addr := strings.TrimPrefix(sim.URL(), "http://")
	var out bytes.Buffer
	env := map[string]string{"ERPSIM_ADDR": addr}
	if err := runToken(ctx, []string{fixture.OwnerLogin}, &out, func(k string) string { return env[k] }); err != nil || strings.Count(out.String(), ".") != 2 {
		t.Fatalf("with ERPSIM_ADDR=%s: %v, output %q", addr, err, out.String())
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "http://127.0.0.1:8089"},
		{map[string]string{"ERPSIM_ADDR": "0.0.0.0:9000"}, "http://127.0.0.1:9000"},
		{map[string]string{"ERPSIM_ADDR": ":9001"}, "http://127.0.0.1:9001"},
		{map[string]string{"ERPSIM_ADDR": "127.0.0.1:9002", "ERPSIM_URL": "http://localhost:9003/"}, "http://localhost:9003"},
	} {
		if got := simBaseURL(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("simBaseURL(%v) = %s, want %s", tt.env, got, tt.want)
		}
	}
}
