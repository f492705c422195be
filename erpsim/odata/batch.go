package odata

import "net/http"

func (h *handler) batch(w http.ResponseWriter, r *http.Request) error {
	return methodNotAllowed(r.Method, r.URL.Path)
}
