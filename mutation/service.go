package mutation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
)

// ErrDisabled is returned by every mutation when the server runs read-only.
var ErrDisabled = errors.New("mutation: writes are disabled on this server")

// ErrRateLimited is returned when the user's write rate limit is exhausted; RetryAfter says when to try again.
type ErrRateLimited struct{ RetryAfter time.Duration }

func (e *ErrRateLimited) Error() string {
	return fmt.Sprintf("mutation: write rate limit exceeded; retry after %s", e.RetryAfter.Round(time.Second))
}

// ErrKeysUnavailable refuses a write with an idempotency key when the key store cannot answer (Redis down): the
// key cannot be checked, so the mutation is not run and nothing is written. RetryAfter says when to try again
// with the same key.
type ErrKeysUnavailable struct {
	RetryAfter time.Duration
	Err        error // the store's failure, for the log
}

func (e *ErrKeysUnavailable) Error() string {
	return fmt.Sprintf("mutation: idempotency-key store unavailable, write refused: %v", e.Err)
}

func (e *ErrKeysUnavailable) Unwrap() error { return e.Err }

// keysRetryAfter is the Retry-After of ErrKeysUnavailable: long enough for a Redis failover or restart, short
// enough that a client's retry finds it back.
const keysRetryAfter = 5 * time.Second

// keysUnavailable is the refusal of a write whose key could not be checked.
func (s *Service) keysUnavailable(err error) error {
	if s.cfg.OnKeysUnavailable != nil {
		s.cfg.OnKeysUnavailable()
	}
	return &ErrKeysUnavailable{RetryAfter: keysRetryAfter, Err: err}
}

// Config configures the Service.
type Config struct {
	ERP     *erpclient.Client
	Enabled bool // ERPGRAPH_WRITES: off, every mutation answers ErrDisabled without an upstream call
	// Keys stores idempotency keys; nil means an in-memory store of KeyCapacity keys living KeyTTL.
	Keys        KeyStore
	KeyTTL      time.Duration // default 24h
	KeyCapacity int           // default 100,000
	// KeyWait is how long a concurrent duplicate waits for the first request with its key before it answers
	// IDEMPOTENCY_IN_PROGRESS; default 10s.
	KeyWait time.Duration
	// KeyField is the sales-order property that carries the idempotency fingerprint, so that a replay after a
	// lost answer finds the order; default ReferenceDocumentNo (docs/erpnet.md).
	KeyField string
	// SubmitState is the state submitSalesOrder moves a NEW order to; default Planned.
	SubmitState erpclient.DocumentState
	MaxLines    int    // lines per order; default 100
	MaxQuantity string // largest quantity per line; default 1000000
	// RatePerMinute and RateBurst bound each user's mutations; defaults 30 and 10; negative RatePerMinute
	// disables the limit.
	RatePerMinute int
	RateBurst     int
	// Rates keeps the write budgets when set (key "write:<user id>"): a store shared by replicas (Redis, GCRA)
	// makes a user's budget global. nil means buckets in this process. A store that fails lets the write
	// through to the rest of its checks.
	Rates  RateStore
	Audit  *slog.Logger // one record per mutation; nil discards
	Logger *slog.Logger
	// AddUpstream hands the mutation's upstream requests on to the request's own count (the request record):
	// a mutation counts its requests apart, for its audit record.
	AddUpstream func(ctx context.Context, n int64)
	// OnReplay is told of every outcome answered from its idempotency key (metrics).
	OnReplay func()
	// OnKeysUnavailable is told of every write refused because the key store failed (metrics).
	OnKeysUnavailable func()
}

// Service runs mutations.
type Service struct {
	cfg    Config
	keys   KeyStore
	limits *userLimits
	maxQty *big.Rat
}

// New validates cfg and returns the Service.
func New(cfg Config) (*Service, error) {
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = 24 * time.Hour
	}
	if cfg.KeyCapacity <= 0 {
		cfg.KeyCapacity = 100_000
	}
	if cfg.KeyWait <= 0 {
		cfg.KeyWait = 10 * time.Second
	}
	if cfg.KeyField == "" {
		cfg.KeyField = "ReferenceDocumentNo"
	}
	if cfg.SubmitState == "" {
		cfg.SubmitState = erpclient.StatePlanned
	}
	if r := cfg.SubmitState.Rank(); !cfg.SubmitState.Valid() || r <= erpclient.StateNew.Rank() || r > erpclient.StateReleased.Rank() ||
		cfg.SubmitState == erpclient.StateAdjustment {
		return nil, fmt.Errorf("mutation: submit state %q: want Planned, FirmPlanned or Released", cfg.SubmitState)
	}
	if cfg.MaxLines <= 0 {
		cfg.MaxLines = 100
	}
	if cfg.MaxQuantity == "" {
		cfg.MaxQuantity = "1000000"
	}
	maxQty, ok := new(big.Rat).SetString(cfg.MaxQuantity)
	if !ok || maxQty.Sign() <= 0 {
		return nil, fmt.Errorf("mutation: max quantity %q is not a positive number", cfg.MaxQuantity)
	}
	if cfg.RatePerMinute == 0 {
		cfg.RatePerMinute = 30
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 10
	}
	if cfg.Audit == nil {
		cfg.Audit = slog.New(slog.DiscardHandler)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, keys: cfg.Keys, maxQty: maxQty, limits: newUserLimits(cfg.RatePerMinute, cfg.RateBurst)}
	if s.keys == nil {
		s.keys = NewMemoryKeyStore(cfg.KeyCapacity, cfg.KeyTTL)
	}
	return s, nil
}

// Enabled reports whether writes are on.
func (s *Service) Enabled() bool { return s != nil && s.cfg.Enabled }

// SubmitState is the state submitSalesOrder moves orders to.
func (s *Service) SubmitState() erpclient.DocumentState { return s.cfg.SubmitState }

// run is the frame of every mutation: the switch, the rate limit, idempotency, the audit record.
func (s *Service) run(ctx context.Context, a Actor, action Action, customerID, entityID string, input any,
	do func(ctx context.Context, ref string) (Outcome, error)) (Outcome, error) {
	if !s.Enabled() {
		s.audit(ctx, a, action, customerID, entityID, CodeWritesDisabled, 0, false)
		return Outcome{}, ErrDisabled
	}
	if a.Scope == nil {
		return Outcome{}, errors.New("mutation: no access scope")
	}
	if wait, ok := s.allow(ctx, a.UserID); !ok {
		s.audit(ctx, a, action, customerID, entityID, CodeRateLimited, 0, false)
		return Outcome{}, &ErrRateLimited{RetryAfter: wait}
	}
	// The mutation's own count of upstream requests (for its audit record), handed on to the request's.
	counter := new(atomic.Int64)
	out, err := s.idempotent(erpclient.CountUpstream(ctx, counter), a, action, input, do)
	if s.cfg.AddUpstream != nil {
		s.cfg.AddUpstream(ctx, counter.Load())
	}
	code := out.Code()
	if err != nil {
		code = CodeInternal
		if errors.As(err, new(*ErrKeysUnavailable)) {
			code = CodeIdempotencyUnavailable
		}
	}
	if out.OrderID != "" {
		entityID = out.OrderID
	}
	s.audit(ctx, a, action, customerID, entityID, code, counter.Load(), out.Replayed)
	return out, err
}

// idempotent runs do once per idempotency key.
func (s *Service) idempotent(ctx context.Context, a Actor, action Action, input any,
	do func(ctx context.Context, ref string) (Outcome, error)) (Outcome, error) {
	if a.IdempotencyKey == "" {
		return do(ctx, "")
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return Outcome{}, fmt.Errorf("mutation: fingerprint input: %w", err)
	}
	h := sha256.Sum256(append([]byte(string(action)+"\x00"), raw...))
	fp := hex.EncodeToString(h[:])
	key := storeKey(a.UserID, a.IdempotencyKey)
	for {
		rec, claimed, err := s.keys.Claim(ctx, key, fp)
		if err != nil {
			return Outcome{}, s.keysUnavailable(err)
		}
		if !claimed {
			if rec.Input != fp {
				return refuse(CodeIdempotencyKeyReused, "this idempotency key was used before with a different input; use a new key for a new request", "input", "idempotencyKey"), nil
			}
			if !rec.Done {
				wctx, cancel := context.WithTimeout(ctx, s.cfg.KeyWait)
				rec2, ok, werr := s.keys.Wait(wctx, key)
				cancel()
				if werr != nil && ctx.Err() != nil {
					return Outcome{}, ctx.Err()
				}
				if werr != nil && !errors.Is(werr, context.DeadlineExceeded) {
					return Outcome{}, s.keysUnavailable(werr) // the store failed while we waited
				}
				if werr != nil {
					return refuse(CodeIdempotencyInProgress, "a request with this idempotency key is still running; retry later with the same key", "input", "idempotencyKey"), nil
				}
				if !ok {
					continue // released: claim it ourselves
				}
				rec = rec2
			}
			out := *rec.Outcome
			out.Replayed = true
			s.replayed()
			return out, nil
		}
		out, err := s.owned(ctx, key, func() (Outcome, error) { return do(ctx, referenceFor(a.UserID, a.IdempotencyKey)) })
		if err != nil || out.keepKeyOpen() {
			if rerr := s.keys.Release(context.WithoutCancel(ctx), key); rerr != nil {
				// The key stays in progress until the store's lease ends; a replay then looks for the order.
				s.cfg.Logger.WarnContext(ctx, "mutation: idempotency store: release", "err", rerr)
			}
			return out, err
		}
		if err := s.keys.Complete(context.WithoutCancel(ctx), key, out); err != nil {
			s.cfg.Logger.WarnContext(ctx, "mutation: idempotency store", "err", err)
		}
		return out, nil
	}
}

func (s *Service) replayed() {
	if s.cfg.OnReplay != nil {
		s.cfg.OnReplay()
	}
}

// owned runs f for the owner of key; a panic releases the key (so duplicates do not wait for an owner that is
// gone) before it goes on.
func (s *Service) owned(ctx context.Context, key string, f func() (Outcome, error)) (Outcome, error) {
	defer func() {
		if p := recover(); p != nil {
			_ = s.keys.Release(context.WithoutCancel(ctx), key)
			panic(p)
		}
	}()
	return f()
}

// keepKeyOpen: outcomes that a replay must not repeat but redo: nothing was written (ERP.net busy) or the
// outcome is unknown (a replay looks for the order before writing again).
func (o Outcome) keepKeyOpen() bool {
	return o.Code() == CodeUpstreamUnavailable
}

func (s *Service) audit(ctx context.Context, a Actor, action Action, customerID, entityID, code string, upstream int64, replayed bool) {
	s.cfg.Audit.LogAttrs(ctx, slog.LevelInfo, "mutation",
		slog.String("request_id", a.RequestID), slog.String("user", a.UserID), slog.String("customer", customerID),
		slog.String("action", string(action)), slog.String("entity_id", entityID), slog.String("outcome", code),
		slog.String("idempotency_key", keyFingerprint(a.UserID, a.IdempotencyKey)), slog.Bool("replayed", replayed),
		slog.Int64("upstream_requests", upstream))
}

// checkQuantity validates a decimal quantity: positive, at most MaxQuantity, at most 6 decimals.
func (s *Service) checkQuantity(q string, field []string) *UserError {
	r, ok := new(big.Rat).SetString(q)
	if !ok || strings.ContainsAny(q, "eE/") {
		return &UserError{Field: field, Code: CodeBadUserInput, Message: "the quantity must be a decimal number"}
	}
	if r.Sign() <= 0 {
		return &UserError{Field: field, Code: CodeBadUserInput, Message: "the quantity must be positive"}
	}
	if r.Cmp(s.maxQty) > 0 {
		return &UserError{Field: field, Code: CodeBadUserInput, Message: "the quantity may be at most " + s.cfg.MaxQuantity}
	}
	if _, frac, ok := strings.Cut(q, "."); ok && len(frac) > 6 {
		return &UserError{Field: field, Code: CodeBadUserInput, Message: "the quantity may have at most 6 decimals"}
	}
	return nil
}

// writeError turns an ERP.net failure of a write into its userError: a stable code and a safe message, never
// ERP.net's own text.
func writeError(err error) Outcome {
	switch {
	case errors.Is(err, erpclient.ErrStale):
		return refuse(CodeStaleObject, "the order was changed by someone else; merge with the current version and try again", "input", "expectedVersion")
	case errors.Is(err, erpclient.ErrReadOnly):
		return refuse(CodeDocumentReadOnly, "the order can no longer be changed")
	case errors.Is(err, erpclient.ErrNotFound):
		return refuse(CodeNotFound, "not found")
	case errors.Is(err, erpclient.ErrRejected):
		return refuse(CodeRejected, "ERP.net refused the change: a product cannot be sold, a value is invalid, or the order does not allow it")
	case errors.Is(err, erpclient.ErrBusy):
		return refuse(CodeUpstreamUnavailable, "the ERP system is busy; nothing was written; retry later")
	}
	return refuse(CodeUpstreamUnavailable, "the ERP system did not answer; the change may or may not have been made; retry with the same idempotency key, or read the order")
}

// itoa keeps field paths short to build.
func itoa(i int) string { return strconv.Itoa(i) }

// grantFor finds the grant under which the user may order for customerID (and shipTo): role Orders or above.
// It returns ok false when the customer is outside the user's access (NOT_FOUND) and allowed false when it is
// visible but no grant's role allows ordering (FORBIDDEN).
func grantFor(scope *access.Scope, customerID, shipTo string) (g access.Grant, visible, allowed bool) {
	for _, gr := range scope.Grants() {
		if gr.CustomerID != customerID && gr.ShipToCustomerID != customerID {
			continue
		}
		visible = true
		if gr.CustomerID != customerID || !gr.Role.Allows(access.ViewSalesOrders) {
			continue
		}
		if gr.ShipToCustomerID != "" && shipTo != "" && shipTo != gr.ShipToCustomerID {
			continue
		}
		if !allowed || gr.Role > g.Role {
			g, allowed = gr, true
		}
	}
	return g, visible, allowed
}
