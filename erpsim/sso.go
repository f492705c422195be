package erpsim

import (
	"net/http"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// ssoCookie names the identity server's browser session, as IdentityServer does.
const ssoCookie = "idsrv"

// ssoLifetime bounds a browser session from its sign-in.
const ssoLifetime = 8 * time.Hour

// ssoSession is a signed-in browser: later authorization requests of any
// application reuse it (single sign-on) and share its sid.
type ssoSession struct {
	user     fixture.User
	sid      string
	authTime time.Time
}

// startSSO opens a browser session for u and sets its cookie.
func (s *Sim) startSSO(w http.ResponseWriter, u fixture.User) ssoSession {
	sso := ssoSession{user: u, sid: randomHex(16), authTime: s.now()}
	handle := randomToken()
	st := &s.idp
	st.mu.Lock()
	for h, old := range st.sso {
		if s.now().Sub(old.authTime) >= ssoLifetime {
			delete(st.sso, h)
		}
	}
	st.sso[handle] = sso
	st.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: handle, Path: idPrefix, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return sso
}

// ssoSession returns the browser session named by the request's cookie.
func (s *Sim) ssoSession(r *http.Request) (ssoSession, bool) {
	c, err := r.Cookie(ssoCookie)
	if err != nil {
		return ssoSession{}, false
	}
	st := &s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	sso, ok := st.sso[c.Value]
	if !ok || s.now().Sub(sso.authTime) >= ssoLifetime {
		return ssoSession{}, false
	}
	return sso, true
}

// endSSO forgets the request's browser session and clears its cookie.
func (s *Sim) endSSO(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(ssoCookie)
	if err != nil {
		return
	}
	st := &s.idp
	st.mu.Lock()
	delete(st.sso, c.Value)
	st.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: idPrefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
