package erpclient

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Decoding fast paths. encoding/json hands each custom unmarshaler the raw bytes of its value after scanning them
// once; calling json.Unmarshal again inside scans and allocates a second time. Every entity carries several
// references, multi-language texts, decimals and dates, so the common forms ERP.net sends are read here by hand,
// and anything unusual (escapes, other shapes) falls back to encoding/json, which stays the reference.

// plainString returns the contents of a JSON string without escapes, or ok false (then decode it properly).
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(inner) { // encoding/json would replace the invalid bytes
		return "", false
	}
	return string(inner), true
}

// odataIDPrefix starts an entity or reference whose first property is its @odata.id, as ERP.net writes them.
var odataIDPrefix = []byte(`{"@odata.id":"`)

// leadingODataID returns the @odata.id of an object that starts with it (no escapes), or ok false.
func leadingODataID(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, odataIDPrefix) || b[len(b)-1] != '}' {
		return "", false
	}
	rest := b[len(odataIDPrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || !utf8.Valid(rest[:end]) {
		return "", false
	}
	// the value must be followed by the end of the object or another property
	after := bytes.TrimLeft(rest[end+1:], " \t\r\n")
	if len(after) == 0 || after[0] != '}' && after[0] != ',' {
		return "", false
	}
	return string(rest[:end]), true
}

// isIdent reports whether s is one identifier: an entity set or property name (ASCII letters, digits and _, not
// starting with a digit, 1 to 128 long).
func isIdent(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// canonicalForm reports whether s is already a lower-case hyphenated GUID, the form ERP.net sends and
// canonicalGUID returns, so it needs no parsing.
func canonicalForm(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// isPlainDecimal reports whether s matches decimalRE: -?digits{1,28}(.digits{1,28})?
func isPlainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	digits := func(p string) bool {
		if len(p) < 1 || len(p) > 28 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
		return true
	}
	return digits(intPart) && (!hasFrac || digits(frac))
}

// plainTexts reads a multi-language object {"EN":"…","BG":null} whose keys and texts have no escapes; ok false
// for anything else.
func plainTexts(b []byte) (MultiLang, bool) {
	ws := func(i int) int {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
			i++
		}
		return i
	}
	str := func(i int) (string, int, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", i, false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return "", i, false
			}
			j++
		}
		if j >= len(b) || !utf8.Valid(b[i+1:j]) {
			return "", i, false
		}
		return string(b[i+1 : j]), j + 1, true
	}
	i := ws(0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	out := MultiLang{}
	i = ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return out, ws(i+1) == len(b)
	}
	for {
		k, next, ok := str(i)
		if !ok {
			return nil, false
		}
		i = ws(next)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = ws(i + 1)
		if bytes.HasPrefix(b[i:], []byte("null")) {
			i += 4
		} else {
			v, next, ok := str(i)
			if !ok {
				return nil, false
			}
			if v != "" {
				out[strings.ToUpper(k)] = v
			}
			i = next
		}
		i = ws(i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = ws(i + 1)
		case '}':
			return out, ws(i+1) == len(b)
		default:
			return nil, false
		}
	}
}
