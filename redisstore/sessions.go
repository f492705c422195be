package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgraph/erpgraph/session"
)

// Sessions is session.Store in Redis: any replica creates, reads, refreshes
// or ends any session. A session is one JSON value that expires with the
// session (PXAT its ExpiresAt); sets per user (sub) and per identity-server
// session (sid) find them for back-channel logout; the refresh lock is
// SET NX PX with a random token, released only by its holder.
type Sessions struct {
	c   *Client
	now func() time.Time // for expiry; Redis also expires the key at ExpiresAt by its own clock
	// lockPoll is how often a waiter retries a held lock. Redis has no
	// blocking lock; the holder's refresh takes a token exchange (tens of
	// milliseconds), so a short poll costs little.
	lockPoll time.Duration
}

var _ session.Store = (*Sessions)(nil)

// Sessions is the session store on this client.
func (c *Client) Sessions() *Sessions { return c.SessionsWithClock(time.Now) }

// SessionsWithClock is Sessions with now as the clock a session expires by
// (as session.NewMemoryStore's), for tests.
func (c *Client) SessionsWithClock(now func() time.Time) *Sessions {
	return &Sessions{c: c, now: now, lockPoll: 20 * time.Millisecond}
}

func (s *Sessions) key(k string) string     { return s.c.key("session", k) }
func (s *Sessions) bySub(sub string) string { return s.c.key("session-sub", sub) }
func (s *Sessions) bySID(sid string) string { return s.c.key("session-sid", sid) }
func (s *Sessions) lock(k string) string    { return s.c.key("session-lock", k) }

func fail(op string, err error) error { return fmt.Errorf("redisstore: sessions: %s: %w", op, err) }

// write stores sess with SET NX (create) or XX (update) and adds it to the
// indexes, which live as long as their longest session.
func (s *Sessions) write(ctx context.Context, sess *session.Session, mode string) (bool, error) {
	b, err := json.Marshal(sess)
	if err != nil {
		return false, err
	}
	args := redis.SetArgs{Mode: mode, ExpireAt: sess.ExpiresAt}
	ok, err := s.c.rdb.SetArgs(ctx, s.key(sess.Key), b, args).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil || ok != "OK" {
		return false, err
	}
	pipe := s.c.rdb.Pipeline()
	for _, idx := range s.indexes(sess) {
		pipe.SAdd(ctx, idx, sess.Key)
		// NX gives a new set its expiry, GT moves it later (Redis 7)
		at := sess.ExpiresAt.UnixMilli()
		pipe.Do(ctx, "PEXPIREAT", idx, at, "NX")
		pipe.Do(ctx, "PEXPIREAT", idx, at, "GT")
	}
	_, err = pipe.Exec(ctx)
	return true, err
}

func (s *Sessions) indexes(sess *session.Session) []string {
	var out []string
	if sess.User.Subject != "" {
		out = append(out, s.bySub(sess.User.Subject))
	}
	if sess.SID != "" {
		out = append(out, s.bySID(sess.SID))
	}
	return out
}

// Create implements session.Store.
func (s *Sessions) Create(ctx context.Context, sess *session.Session) error {
	ok, err := s.write(ctx, sess, "NX")
	switch {
	case err != nil:
		return fail("create", err)
	case !ok:
		return session.ErrExists
	}
	return nil
}

// Get implements session.Store.
func (s *Sessions) Get(ctx context.Context, key string) (*session.Session, error) {
	b, err := s.c.rdb.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, fail("get", err)
	}
	var sess session.Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return nil, fail("get", err)
	}
	if !s.now().Before(sess.ExpiresAt) { // Redis expires it too; clocks differ by a little
		return nil, session.ErrNotFound
	}
	return &sess, nil
}

// Update implements session.Store: SET XX never brings an ended session back.
func (s *Sessions) Update(ctx context.Context, sess *session.Session) error {
	ok, err := s.write(ctx, sess, "XX")
	switch {
	case err != nil:
		return fail("update", err)
	case !ok:
		return session.ErrNotFound
	}
	return nil
}

// Delete implements session.Store.
func (s *Sessions) Delete(ctx context.Context, key string) error {
	if err := s.c.rdb.Del(ctx, s.key(key)).Err(); err != nil {
		return fail("delete", err)
	}
	return nil
}

// DeleteMatching implements session.Store. The index sets may name
// sessions that ended already or changed hands; each candidate is read and
// checked before it is deleted (GETDEL, so two replicas handling the same
// logout return each session once).
func (s *Sessions) DeleteMatching(ctx context.Context, sub, sid string) ([]*session.Session, error) {
	if sub == "" && sid == "" {
		return nil, nil
	}
	idx := s.bySID(sid)
	if sid == "" {
		idx = s.bySub(sub)
	}
	keys, err := s.c.rdb.SMembers(ctx, idx).Result()
	if err != nil {
		return nil, fail("delete matching", err)
	}
	var out []*session.Session
	for _, k := range keys {
		b, err := s.c.rdb.Get(ctx, s.key(k)).Bytes()
		if errors.Is(err, redis.Nil) {
			s.c.rdb.SRem(ctx, idx, k)
			continue
		}
		if err != nil {
			return out, fail("delete matching", err)
		}
		var sess session.Session
		if err := json.Unmarshal(b, &sess); err != nil {
			return out, fail("delete matching", err)
		}
		if (sub != "" && sess.User.Subject != sub) || (sid != "" && sess.SID != sid) {
			continue
		}
		b, err = s.c.rdb.GetDel(ctx, s.key(k)).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // another replica ended it just now
		}
		if err != nil {
			return out, fail("delete matching", err)
		}
		if err := json.Unmarshal(b, &sess); err != nil {
			return out, fail("delete matching", err)
		}
		for _, i := range s.indexes(&sess) {
			s.c.rdb.SRem(ctx, i, k)
		}
		out = append(out, &sess)
	}
	return out, nil
}

// unlockScript deletes the lock only if it still holds this holder's token:
// a holder whose lock expired must not release the next holder's.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Lock implements session.Store.
func (s *Sessions) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	lk := s.lock(key)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		ok, err := s.c.rdb.SetNX(ctx, lk, token, ttl).Result()
		if err != nil {
			return nil, fail("lock", err)
		}
		if ok {
			return func() {
				// the holder's ctx may be over; the release must still happen
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				_ = unlockScript.Run(rctx, s.c.rdb, []string{lk}, token).Err()
			}, nil
		}
		t.Reset(s.lockPoll)
	}
}
