package server

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/errcode"
)

// CORSConfig lets browser apps on other origins call /graphql. Requests carry
// the user's token in the Authorization header, never in cookies, so
// credentials are never allowed and there is no wildcard: each origin is
// listed.
type CORSConfig struct {
	// Origins are the allowed origins, exactly as browsers send them
	// (scheme://host[:port]). None: no cross-origin browser access.
	Origins []string
	// MaxAge is how long browsers may cache a preflight answer; default 10m.
	MaxAge time.Duration
}

// DefaultCSRFHeaders are the headers whose presence proves that a browser
// sent a preflight (they are not CORS-safelisted), as Apollo's clients send
// them.
var DefaultCSRFHeaders = []string{"X-Apollo-Operation-Name", "Apollo-Require-Preflight"}

// corsAllowHeaders are the request headers a cross-origin app may send.
var corsAllowHeaders = []string{
	"Authorization", "Content-Type", "Accept", RequestIDHeader,
	"Apollo-Require-Preflight", "X-Apollo-Operation-Name",
	"Apollographql-Client-Name", "Apollographql-Client-Version",
}

// ValidOrigin reports whether o is a serialized origin (scheme://host[:port],
// nothing else), which is what Origin headers hold.
func ValidOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && o == u.Scheme+"://"+u.Host
}

// cors answers preflight requests to /graphql and marks the responses to
// allowed origins. A request from an origin not on the list is still served
// (non-browser clients and same-origin requests may send Origin), but without
// the headers, so the browser keeps the answer from the page; CSRF prevention
// makes sure such a request could not have run anything by itself.
func (s *Server) cors(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range s.cfg.CORS.Origins {
		allowed[o] = true
	}
	headers := append(append([]string{}, corsAllowHeaders...), s.cfg.CSRFHeaders...)
	slices.SortFunc(headers, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	allowHeaders := strings.Join(slices.CompactFunc(headers, strings.EqualFold), ", ")
	maxAge := strconv.Itoa(int(s.cfg.CORS.MaxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		h.Add("Vary", "Origin")
		ok := origin != "" && allowed[origin]
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") == "" {
			h.Set("Allow", "GET, POST")
			writeError(w, r, http.StatusMethodNotAllowed, errcode.BadRequest, "use GET or POST on /graphql")
			return
		}
		if r.Method == http.MethodOptions {
			method := r.Header.Get("Access-Control-Request-Method")
			if !ok || (method != http.MethodGet && method != http.MethodPost) {
				s.deny(w, r, http.StatusForbidden, errcode.CORSRefused, "cors",
					"cross-origin requests from this origin are not allowed")
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", allowHeaders)
			h.Set("Access-Control-Max-Age", maxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", RequestIDHeader+", Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

// simpleContentTypes are the CORS-safelisted types a page may POST anywhere
// without a preflight.
var simpleContentTypes = map[string]bool{
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
	"text/plain":                        true,
}

// preventCSRF refuses requests a browser could send cross-origin without a
// preflight, as Apollo Router does: a request with no Content-Type (every
// GET) or a simple one must carry one of the CSRF headers, which no page can
// add without the server's CORS consent. A JSON POST always needs a preflight.
func (s *Server) preventCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			essence, _, err := mime.ParseMediaType(ct)
			// An unparsable type is not safelisted either: browsers preflight it.
			if err != nil || !simpleContentTypes[essence] {
				next.ServeHTTP(w, r)
				return
			}
		}
		for _, name := range s.cfg.CSRFHeaders {
			if r.Header.Get(name) != "" {
				next.ServeHTTP(w, r)
				return
			}
		}
		s.deny(w, r, http.StatusBadRequest, errcode.CSRFPrevented, "csrf",
			"this request has been blocked as a potential cross-site request forgery (CSRF): send Content-Type: application/json, or a non-empty "+
				strings.Join(s.cfg.CSRFHeaders, " or ")+" header")
	})
}
