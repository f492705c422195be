package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/session"
	"github.com/erpgraph/erpgraph/session/sessiontest"
)

func TestMemoryStore(t *testing.T) {
	sessiontest.StoreContract(t, func(now func() time.Time) session.Store { return session.NewMemoryStore(0, now) })
}

func TestMemoryStore_Bounded(t *testing.T) {
	st := session.NewMemoryStore(2, nil)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		_ = st.Create(ctx, &session.Session{Key: k, ExpiresAt: time.Now().Add(time.Hour)})
	}
	if _, err := st.Get(ctx, "a"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the least recently used session survived past the bound: %v", err)
	}
}
