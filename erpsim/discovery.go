package erpsim

import (
	"net/http"
	"net/url"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// PlatformVersion is the ERP.net version whose documented behaviour erpsim follows (/tools/ver).
const PlatformVersion = "26.2.0.0"

type webSite struct {
	Type                 string            `json:"Type"`
	Status               string            `json:"Status"`
	StatusDescription    string            `json:"StatusDescription"`
	URL                  string            `json:"Url"`
	System               bool              `json:"System"`
	AdditionalProperties map[string]string `json:"AdditionalProperties,omitempty"`
}

// handleAutoDiscovery serves the instance's auto-discovery document, from
// which clients find the identity server and the OData service root.
func (s *Sim) handleAutoDiscovery(w http.ResponseWriter, r *http.Request) {
	host := s.base
	if u, err := url.Parse(s.base); err == nil {
		host = u.Host
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Host":   host,
		"DbName": fixture.DBName,
		"WebSites": []webSite{
			{Type: "ID", Status: "Working", StatusDescription: "Running", URL: s.IdentityURL(), System: true},
			{Type: "DomainAPI", Status: "Working", StatusDescription: "Running", URL: s.base + "/api", System: true,
				AdditionalProperties: map[string]string{"ODataServiceRoot": s.ODataURL()}},
			{Type: "UserProfile", Status: "Working", StatusDescription: "Running", URL: s.base + "/profile", System: true},
		},
	})
}

// handleVersion serves /tools/ver: the platform version as plain text.
func (s *Sim) handleVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	v := PlatformVersion
	if s.opts.Before262 {
		v = "26.1.0.0"
	}
	_, _ = w.Write([]byte(v))
}

// handleProfile serves the profile site's /me for user access tokens; service
// (client-credentials) tokens are refused, as on ERP.net.
func (s *Sim) handleProfile(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	meta := metaFrom(r.Context())
	meta.clientID, meta.login = claims.ClientID, claims.login()
	u, found := s.user(claims.Subject)
	if claims.isService() || !found {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "The profile site accepts user tokens only."})
		return
	}
	var person any
	if u.PersonN > 0 {
		person = map[string]string{"id": fixture.ID("General_Contacts_Parties", u.PersonN), "name": u.Name}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": u.ID(), "login": u.Login, "name": u.Name, "email": u.Email, "phoneNumber": nil,
		"isAdmin": u.IsAdmin, "isActive": u.Active, "userType": u.UserType, "preferredLanguage": u.Locale,
		"pictureUrl": nil, "largePictureUrl": nil, "person": person, "domain": nil,
		"instance": map[string]string{"database": fixture.DBName, "url": s.base},
		"links":    map[string]string{"self": s.base + "/profile/me"},
	})
}
