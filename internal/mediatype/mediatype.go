// Package mediatype chooses between the two response media types of GraphQL over HTTP, for the GraphQL transport
// and for the answers the HTTP edge gives itself (401, 413, 429, CSRF ...), so a client gets one media type from
// erpgraph whoever answers.
package mediatype

import (
	"mime"
	"strconv"
	"strings"
)

// The response media types of the GraphQL-over-HTTP specification.
const (
	GraphQLResponse = "application/graphql-response+json"
	JSON            = "application/json"
)

// Negotiate picks the response media type from the Accept header: the supported type with the highest
// quality, application/graphql-response+json on a tie; no header, */* or application/* mean application/json.
func Negotiate(accept []string) (string, bool) {
	if len(accept) == 0 {
		return JSON, true
	}
	best, bestQ := "", 0.0
	for _, header := range accept {
		for part := range strings.SplitSeq(header, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q <= 0 {
					continue
				}
			}
			var candidate string
			switch mt {
			case GraphQLResponse:
				candidate = GraphQLResponse
			case JSON, "*/*", "application/*":
				candidate = JSON
			default:
				continue
			}
			if q > bestQ || (q == bestQ && candidate == GraphQLResponse) {
				best, bestQ = candidate, q
			}
		}
	}
	return best, best != ""
}
