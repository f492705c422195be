package erpsim

import (
	"cmp"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// Fault describes a failure injected into requests whose path starts with Path.
//
// A Path below the Domain API root that names an entity set (for example
// "/api/domain/odata/General_Products_Products") also matches the parts of a
// $batch that read or write that set, since ERP.net runs each part as a
// request of its own: such a part answers the fault (status, malformed body,
// delay) inside an otherwise healthy batch. Drop cannot drop one part; it
// drops the whole $batch connection. Faults on the root itself
// ("/api/domain/odata/") apply to the outer request only, once.
type Fault struct {
	Path       string        // path prefix, e.g. "/api/domain/odata/" or "/id/connect/token"
	Method     string        // "" = any method
	Rate       float64       // probability per matching request, 0..1; 0 is treated as 1 (every request)
	Status     int           // answer this status with the ERP.net error envelope (0 = no status fault)
	RetryAfter int           // seconds, sent as Retry-After (429 and 503 default to 1 and 60)
	Delay      time.Duration // added before the request is handled (or answered by the fault)
	Malformed  bool          // answer 200 with a truncated JSON body
	Drop       bool          // close the connection without answering
	// CommitThenDrop lets the request run to its end (a write commits) and then
	// closes the connection instead of answering: the client cannot tell
	// whether anything was written. Like Drop, it applies to whole requests.
	CommitThenDrop bool
	Count          int // fire at most Count times (0 = unlimited)
}

// terminal reports whether the fault answers the request itself.
func (f Fault) terminal() bool { return f.Status != 0 || f.Malformed || f.Drop || f.CommitThenDrop }

type faultSet struct {
	mu     sync.Mutex
	faults []Fault
	fired  []int
}

// SetFaults replaces the fault list; with no arguments the instance is healthy.
// The first matching fault that fires handles a request.
func (s *Sim) SetFaults(faults ...Fault) {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = append([]Fault(nil), faults...)
	fs.fired = make([]int, len(faults))
}

// pick returns the fault that fires for a request (or $batch part) with
// path and method, if any, and counts it. part limits the choice to faults
// aimed below the Domain API root.
func (fs *faultSet) pick(path, method string, part bool) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if !strings.HasPrefix(path, f.Path) || (f.Method != "" && !strings.EqualFold(f.Method, method)) {
			continue
		}
		if part && len(f.Path) <= len(domainPrefix) {
			continue
		}
		if f.Count > 0 && fs.fired[i] >= f.Count {
			continue
		}
		if f.Rate > 0 && f.Rate < 1 && rand.Float64() >= f.Rate {
			continue
		}
		fs.fired[i]++
		return f, true
	}
	return Fault{}, false
}

// injectFaults applies the configured faults before the request reaches the
// instance, like a failing gateway in front of it.
func (s *Sim) injectFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.faults.pick(r.URL.Path, r.Method, false)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.applyFault(w, r, f, next)
	})
}

// injectPartFaults is the odata.Options.Part hook: faults aimed at an entity
// set fire on the $batch parts that use it (part paths are relative to the
// service root).
func (s *Sim) injectPartFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.faults.pick(strings.TrimSuffix(domainPrefix, "/")+r.URL.Path, r.Method, true)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.applyFault(w, r, f, next)
	})
}

// applyFault delays r by the fault's delay, then answers the fault or, for a
// delay-only fault, lets next handle r.
func (s *Sim) applyFault(w http.ResponseWriter, r *http.Request, f Fault, next http.Handler) {
	s.sleepCtx(r.Context(), f.Delay)
	if r.Context().Err() != nil {
		return
	}
	if !f.terminal() {
		next.ServeHTTP(w, r)
		return
	}
	switch {
	case f.CommitThenDrop:
		next.ServeHTTP(discardResponse{h: http.Header{}}, r)
		dropConnection(w)
	case f.Drop:
		dropConnection(w)
	case f.Malformed:
		w.Header().Set("Content-Type", odataJSON)
		w.Header().Set("OData-Version", "4.0")
		w.WriteHeader(http.StatusOK)
		// A body cut off mid-document, as after a proxy timeout.
		_, _ = w.Write([]byte(`{"@odata.context":"` + s.ODataURL() + `$metadata#Crm_Sales_SalesOrders","value":[{"DocumentNo":"00`))
	default:
		writeFaultStatus(w, f)
	}
}

// dropConnection closes the client connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2 or an in-process recorder): abort the handler,
		// which makes net/http reset the stream.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// writeFaultStatus answers an injected status the way ERP.net would.
func writeFaultStatus(w http.ResponseWriter, f Fault) {
	if f.Status == http.StatusUnauthorized {
		writeInvalidToken(w)
		return
	}
	retry := f.RetryAfter
	write := func(w http.ResponseWriter) {
		odata.WriteError(w, f.Status, 0, "Aloe.SystemFrameworks.InjectedFaultException",
			"The request failed: "+http.StatusText(f.Status)+" (injected by erpsim).")
	}
	switch f.Status {
	case http.StatusTooManyRequests:
		retry, write = cmp.Or(retry, 1), writeTooManyRequests
	case http.StatusServiceUnavailable:
		retry, write = cmp.Or(retry, 60), writeLicenseExceeded
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	write(w)
}

// discardResponse swallows the answer of a request whose connection a
// CommitThenDrop fault drops afterwards.
type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header         { return d.h }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}
