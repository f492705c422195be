package graph

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Relay cursors carry only a position, never a query: "k:<guid>" continues keyset paging after that Id (lists
// in ERP.net's default order), "o:<n>" skips n rows (ordered lists). Both are validated when decoded, so a
// hand-crafted cursor can move within the user's own results but never change their filters or scope.
const (
	keysetPrefix = "k:"
	offsetPrefix = "o:"
)

// maxOffset bounds $skip through a cursor: far pages of a big list are refused rather than making ERP.net
// count past millions of rows.
const maxOffset = 100000

// errBadCursor is the BAD_USER_INPUT answer for a cursor erpgraph did not issue for this list.
var errBadCursor = inputError("after: invalid cursor; pass pageInfo.endCursor or an edge cursor of the same list")

type position struct {
	after  string // keyset: the last Id seen
	offset int    // offset: the number of rows before the page
}

func keysetCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(keysetPrefix + id))
}

func offsetCursor(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(offsetPrefix + strconv.Itoa(n)))
}

// decodeCursor parses after; ordered says whether the list is ordered (offset paging) or in the default order
// (keyset paging). A cursor of the other kind is refused.
func decodeCursor(after *string, ordered bool) (position, error) {
	if after == nil || *after == "" {
		return position{}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(*after, "="))
	if err != nil || len(raw) > 64 {
		return position{}, errBadCursor
	}
	s := string(raw)
	switch {
	case strings.HasPrefix(s, keysetPrefix) && !ordered:
		id, err := uuid.Parse(s[len(keysetPrefix):])
		if err != nil || len(s) != len(keysetPrefix)+36 {
			return position{}, errBadCursor
		}
		return position{after: id.String()}, nil
	case strings.HasPrefix(s, offsetPrefix):
		n, err := strconv.Atoi(s[len(offsetPrefix):])
		if err != nil || n < 0 || n > maxOffset {
			return position{}, errBadCursor
		}
		return position{offset: n}, nil
	}
	return position{}, errBadCursor
}

// cursor is the erpclient cursor of p, or nil for the first page.
func (p position) cursor() *erpclient.Cursor {
	switch {
	case p.after != "":
		return &erpclient.Cursor{SkipToken: p.after}
	case p.offset > 0:
		return &erpclient.Cursor{Skip: p.offset}
	}
	return nil
}
