package server

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

// hashedName matches the content-hashed file names bundlers emit
// (app.3f9a1c2b.js, index-BxY7_k2Q.css, chunk-5d41402abc4b2a76.mjs): such a
// file never changes under its name, so browsers may keep it for a year.
var hashedName = regexp.MustCompile(`[.-][A-Za-z0-9_]{8,}\.[a-z0-9]+$`)

// hashedHasDigit keeps words such as "-polyfills.js" from counting as hashes.
var hashedHasDigit = regexp.MustCompile(`[.-][A-Za-z_]*[0-9][A-Za-z0-9_]*\.[a-z0-9]+$`)

// StaticCSP is the Content-Security-Policy of a same-origin frontend: code,
// styles, images, fonts and fetches from this origin only, nothing inline,
// no framing, no plugins; forms may post here and to formActions (the
// identity server, since a sign-out form is redirected there, and browsers
// check form-action on redirects).
func StaticCSP(formActions ...string) string {
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
		strings.TrimSpace("form-action 'self' " + strings.Join(formActions, " ")),
	}, "; ")
}

// Static serves a built single-page frontend from fsys under prefix ("/" or
// "/portal/"): files as they are, any other path without a file extension
// gets index.html (the SPA's client-side routes), a missing file with an
// extension is a 404 (a broken asset link should fail visibly). Hashed
// assets are cached for a year, everything else revalidates (index.html is
// no-cache, so a deployment takes effect on the next load).
func Static(fsys fs.FS, prefix, csp string) http.Handler {
	start := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", csp)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rel := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, prefix)), "/")
		if rel == "" {
			rel = "index.html"
		}
		f, err := fsys.Open(rel)
		if err == nil {
			if st, serr := f.Stat(); serr != nil || st.IsDir() {
				f.Close()
				f, err = nil, fs.ErrNotExist
				if serr == nil {
					// A directory: its index.html, if any.
					rel = path.Join(rel, "index.html")
					f, err = fsys.Open(rel)
				}
			}
		}
		if errors.Is(err, fs.ErrNotExist) && path.Ext(rel) == "" {
			rel = "index.html"
			f, err = fsys.Open(rel)
		}
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		base := path.Base(rel)
		switch {
		case base == "index.html" || path.Ext(base) == ".html":
			h.Set("Cache-Control", "no-cache")
		case hashedName.MatchString(base) && hashedHasDigit.MatchString(base):
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			h.Set("Cache-Control", "no-cache")
		}
		mod := st.ModTime()
		if mod.IsZero() { // embedded files have no time: the process start stands in
			mod = start
		}
		if rs, ok := f.(io.ReadSeeker); ok {
			http.ServeContent(w, r, base, mod, rs)
			return
		}
		b, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, base, mod, bytes.NewReader(b))
	})
}
