package odata

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Responses are written by hand into one buffer: a 50-row page must cost
// well under a millisecond, and reflection-based encoding of generic rows
// would dominate that.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendNumber(b []byte, n float64) []byte { return strconv.AppendFloat(b, n, 'f', -1, 64) }

func appendRef(b []byte, e *entity) []byte {
	b = append(b, `{"@odata.id":"`...)
	b = append(b, e.set.name...)
	b = append(b, '(')
	b = appendID(b, e.id)
	return append(b, `)"}`...)
}

// appendValue appends v (non-null) as the JSON of kind k.
func appendValue(b []byte, k kind, v value) []byte {
	switch k {
	case kString, kEnum, kGUID:
		return appendString(b, v.s)
	case kInt, kDecimal:
		return appendNumber(b, v.n)
	case kBool:
		if v.n != 0 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case kDate, kDateTime:
		b = append(b, '"')
		b = time.Unix(int64(v.n), 0).UTC().AppendFormat(b, time.RFC3339)
		return append(b, '"')
	case kML:
		b = append(b, '{')
		first := true
		for i, t := range mlText(v.s) {
			if t == "" {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, languages[i]...)
			b = append(b, `":`...)
			b = appendString(b, t)
		}
		return append(b, '}')
	case kAmount, kQuantity:
		b = append(b, `{"Value":`...)
		b = appendNumber(b, v.n)
		if k == kAmount {
			b = append(b, `,"Currency":`...)
		} else {
			b = append(b, `,"Unit":`...)
		}
		b = appendString(b, v.s)
		return append(b, '}')
	case kRef:
		return appendRef(b, v.ref)
	}
	return append(b, "null"...)
}

// encoder writes entities as the Domain API shapes them.
type encoder struct {
	b         []byte
	skipNulls bool
}

func (w *encoder) key(first *bool, name string) {
	if !*first {
		w.b = append(w.b, ',')
	}
	*first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, `":`...)
}

// entity writes e shaped by q's $select and $expand. schema is the set the
// caller queried (a base set shows only its own properties); explicit
// $select names may also come from e's own (derived) set. With inObject the
// caller has already opened the JSON object and written a property (the
// @odata.context of a single entity).
func (w *encoder) entity(e *entity, schema *entitySet, q *query, inObject bool) {
	first := !inObject
	if !inObject {
		w.b = append(w.b, '{')
	}
	w.key(&first, "@odata.id")
	w.b = append(w.b, '"')
	w.b = append(w.b, e.set.name...)
	w.b = append(w.b, '(')
	w.b = appendID(w.b, e.id)
	w.b = append(w.b, `)"`...)
	expanded := func(p *prop) bool {
		for _, x := range q.expand {
			if x.prop.name == p.name {
				return true
			}
		}
		return false
	}
	if q.sel.def {
		for _, p := range schema.props {
			if p.extra || p.kind == kLines || expanded(p) {
				continue
			}
			w.prop(&first, e, p)
		}
	}
	for _, name := range q.sel.names {
		p := schema.byName[name]
		if p == nil {
			p = e.set.byName[name]
		}
		if p == nil || expanded(p) || q.sel.def && !p.extra && p.kind != kLines {
			continue // not on this row's type, expanded below, or already written as a default
		}
		w.prop(&first, e, p)
	}
	for _, x := range q.expand {
		p := e.set.byName[x.prop.name]
		if p == nil {
			continue
		}
		w.key(&first, p.name)
		if p.kind == kLines {
			w.b = append(w.b, '[')
			for i, c := range x.q.execute(e.lines).rows {
				if i > 0 {
					w.b = append(w.b, ',')
				}
				w.entity(c, c.set, x.q, false)
			}
			w.b = append(w.b, ']')
			continue
		}
		v := e.get(p)
		if v.isNull() {
			w.b = append(w.b, "null"...)
			continue
		}
		w.entity(v.ref, v.ref.set, x.q, false)
	}
	w.b = append(w.b, '}')
}

func (w *encoder) prop(first *bool, e *entity, p *prop) {
	if p.kind == kLines {
		w.key(first, p.name)
		w.b = append(w.b, '[')
		for i, c := range e.lines {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendRef(w.b, c)
		}
		w.b = append(w.b, ']')
		return
	}
	v := e.get(p)
	if v.isNull() {
		if w.skipNulls {
			return
		}
		w.key(first, p.name)
		w.b = append(w.b, "null"...)
		return
	}
	w.key(first, p.name)
	w.b = appendValue(w.b, p.kind, v)
}
