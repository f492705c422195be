package errcode_test

import (
	"testing"

	gqlcode "github.com/99designs/gqlgen/graphql/errcode"

	"github.com/erpgraph/erpgraph/errcode"
)

func TestRegistry(t *testing.T) {
	// gqlgen sets these itself; the registry must spell them as it does.
	if errcode.ParseFailed != gqlcode.ParseFailed || errcode.ValidationFailed != gqlcode.ValidationFailed {
		t.Errorf("gqlgen's codes are %s and %s", gqlcode.ParseFailed, gqlcode.ValidationFailed)
	}
	for _, e := range errcode.All() {
		if e.Status != 0 && (e.Status < 400 || e.Status > 599) {
			t.Errorf("%s: status %d is not an error status", e.Code, e.Status)
		}
		if e.Status != 0 && e.Request {
			t.Errorf("%s: a request error's status follows the response media type, not a fixed %d", e.Code, e.Status)
		}
		if got, ok := errcode.Lookup(e.Code); !ok || got != e || !errcode.Known(e.Code) || errcode.Retryable(e.Code) != e.Retry {
			t.Errorf("%s: Lookup = %+v, %v", e.Code, got, ok)
		}
	}
	tests := []struct {
		code  string
		retry bool
	}{
		{errcode.RateLimited, true}, {errcode.UpstreamUnavailable, true}, {errcode.ShuttingDown, true},
		{errcode.Unauthenticated, false}, {errcode.BadUserInput, false}, {errcode.PersistedQueryNotFound, false},
		{"NO_SUCH_CODE", false},
	}
	for _, tt := range tests {
		if got := errcode.Retryable(tt.code); got != tt.retry {
			t.Errorf("Retryable(%s) = %v, want %v", tt.code, got, tt.retry)
		}
	}
	if errcode.Known("NO_SUCH_CODE") || errcode.Known("") {
		t.Error("an unregistered code is known")
	}
}
