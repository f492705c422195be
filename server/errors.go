package server

import (
	"encoding/json"
	"net/http"

	"github.com/erpgraph/erpgraph/internal/mediatype"
)

// gqlError is the GraphQL response shape of an error the edge answers
// itself, so clients parse one format whoever refused the request.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code      string `json:"code"`
		RequestID string `json:"requestId,omitempty"`
	} `json:"extensions"`
}

// writeError answers {"errors":[{"message":..,"extensions":{"code":..,"requestId":..}}]} in the media type the
// client's Accept header asks for, as the GraphQL transport would: a client that accepts only
// application/graphql-response+json (Apollo Client 4) reads the code instead of just the status. Accept headers
// that allow neither type still get application/json: the status is the answer, not a 406.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	var e gqlError
	e.Message = msg
	e.Extensions.Code = code
	e.Extensions.RequestID = RequestID(r.Context())
	media, ok := mediatype.Negotiate(r.Header.Values("Accept"))
	if !ok {
		media = mediatype.JSON
	}
	write(w, status, media, map[string][]gqlError{"errors": {e}})
}

func writeJSON(w http.ResponseWriter, status int, v any) { write(w, status, mediatype.JSON, v) }

func write(w http.ResponseWriter, status int, media string, v any) {
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
