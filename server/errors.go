package server

import (
	"encoding/json"
	"net/http"
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

// writeError answers {"errors":[{"message":..,"extensions":{"code":..,"requestId":..}}]}.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	var e gqlError
	e.Message = msg
	e.Extensions.Code = code
	e.Extensions.RequestID = RequestID(r.Context())
	writeJSON(w, status, map[string][]gqlError{"errors": {e}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
