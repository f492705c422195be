// Package sessiontest holds the contract tests every session.Store passes.
package sessiontest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/internal/testclock"
	"github.com/erpgraph/erpgraph/session"
)

// StoreContract checks what every session.Store must do (the memory store and the Redis store run it):
// create/get/update/delete with copies, ErrExists and ErrNotFound, no resurrection by Update, expiry at
// ExpiresAt by the now clock, DeleteMatching by sub and/or sid, and an exclusive, waiting, per-key Lock.
// newStore builds an empty store whose expiry clock is now.
func StoreContract(t *testing.T, newStore func(now func() time.Time) session.Store) {
	t.Helper()
	ctx := context.Background()
	c := &testclock.Offset{}
	st := newStore(c.Now)
	mk := func(key, sub, sid string) *session.Session {
		now := c.Now()
		return &session.Session{Key: key, User: auth.User{Subject: sub, Scopes: []string{"openid"}}, SID: sid,
			RefreshToken: []byte("sealed"), CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := st.Create(ctx, mk("a", "anna", "S1")); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, mk("a", "eve", "S9")); !errors.Is(err, session.ErrExists) {
		t.Errorf("Create over an existing key: %v, want ErrExists", err)
	}
	got, err := st.Get(ctx, "a")
	if err != nil || got.User.Subject != "anna" {
		t.Fatalf("Get: %+v %v", got, err)
	}
	got.RefreshToken[0] = 'X' // a copy: the store's value must not change
	got.User.Subject = "changed"
	if again, _ := st.Get(ctx, "a"); again.User.Subject != "anna" || string(again.RefreshToken) != "sealed" {
		t.Errorf("Get returned the stored value, not a copy")
	}
	if err := st.Update(ctx, mk("missing", "x", "")); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Update of a missing session: %v, want ErrNotFound", err)
	}
	_ = st.Create(ctx, mk("b", "anna", "S2"))
	_ = st.Create(ctx, mk("c", "boris", "S3"))
	ended, err := st.DeleteMatching(ctx, "anna", "S2")
	if err != nil || len(ended) != 1 || ended[0].Key != "b" {
		t.Errorf("DeleteMatching(anna, S2): %v %v", ended, err)
	}
	ended, _ = st.DeleteMatching(ctx, "anna", "")
	if len(ended) != 1 || ended[0].Key != "a" {
		t.Errorf("DeleteMatching(anna): %v", ended)
	}
	if ended, _ := st.DeleteMatching(ctx, "", ""); len(ended) != 0 {
		t.Errorf("DeleteMatching with neither sub nor sid ended %d sessions", len(ended))
	}
	if _, err := st.Get(ctx, "a"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after DeleteMatching: %v", err)
	}
	if err := st.Update(ctx, mk("a", "anna", "S1")); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Update brought an ended session back: %v", err)
	}
	c.Advance(2 * time.Hour)
	if _, err := st.Get(ctx, "c"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get past ExpiresAt: %v", err)
	}
	if err := st.Delete(ctx, "nothing"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}

	// The lock is exclusive per key and waits, not fails.
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := st.Lock(ctx, "k", time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders of one lock at once", most.Load())
	}
	unlock, _ := st.Lock(ctx, "k", time.Second)
	other, err := st.Lock(ctx, "other", time.Second)
	if err != nil {
		t.Fatalf("a second key's lock waited for the first: %v", err)
	}
	other()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Lock(cctx, "k", time.Second); err == nil {
		t.Error("Lock on a held key with a cancelled context succeeded")
	}
	unlock()
	unlock() // releasing twice is harmless
}
