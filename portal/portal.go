// Package portal is an example customer portal for erpgraph's monolithic
// deployment: plain HTML and ES modules (no build step) in web/, served from
// erpgraph's own origin and signed in with the session cookie only. No token
// ever reaches the browser. Copy web/ to start a frontend; erpgraph serves a
// copy with ERPGRAPH_STATIC_DIR, and dev mode serves this one at /portal/.
package portal

import (
	"embed"
	"io/fs"
)

//go:embed web
var web embed.FS

// FS is the portal's files (index.html at the root).
func FS() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}
