package odata

import "net/http"

// NewHandler returns the Domain API handler for s. Paths are relative to the
// service root: "/Crm_Sales_SalesOrders", "/Crm_Sales_SalesOrders(<guid>)",
// "/$batch", "/$metadata", ...
func NewHandler(s *Store, opts Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, 404, "Aloe.SystemFrameworks.Domain.ObjectNotFoundException", "Resource not found for the segment '"+r.URL.Path+"'.")
	})
}
