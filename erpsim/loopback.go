package erpsim

import (
	"net"
	"net/url"
	"slices"
)

// registered reports whether got is one of the registered URIs (or
// origins): an exact, case-sensitive match, as ERP.net's ImpersonateLoginUrl
// expects. For an application with LoopbackAnyPort, a registered loopback
// URI also matches got on any port (RFC 8252 §7.3), so a playground on
// whatever loopback port erpgraph listens on can sign in against
// `erpgraph sim`. That leniency is erpsim's: on a real instance each URL is
// registered.
func registered(list []string, got string, loopbackAnyPort bool) bool {
	if slices.Contains(list, got) {
		return true
	}
	if !loopbackAnyPort {
		return false
	}
	g, ok := loopbackURL(got)
	if !ok {
		return false
	}
	for _, r := range list {
		if u, ok := loopbackURL(r); ok && u.Scheme == g.Scheme && u.Hostname() == g.Hostname() &&
			u.EscapedPath() == g.EscapedPath() && u.RawQuery == g.RawQuery {
			return true
		}
	}
	return false
}

// loopbackURL parses an http URL on localhost, 127.0.0.1 or [::1] with an
// explicit port, without credentials or fragment.
func loopbackURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Port() == "" {
		return nil, false
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return nil, false
		}
	}
	return u, true
}
