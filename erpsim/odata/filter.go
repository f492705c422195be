package odata

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ERP.net's $filter subset: eq, ge, le, and, in; contains, startswith,
// endswith, equalnull, lessequalnull, greaterequalnull; parentheses.
// or, ne, gt, lt and not are refused, as ERP.net does.

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tGUID
	tDate
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string    // identifier, string content (unescaped) or number text
	num  float64   // tNumber
	t    time.Time // tDate
	id   uuid.UUID // tGUID
	pos  int
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' || c == '/' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

// lexGUID reports whether a GUID (8-4-4-4-12 hex) starts at s[i:].
func lexGUID(s string, i int) (uuid.UUID, bool) {
	if len(s)-i < 36 || (len(s)-i > 36 && isIdentChar(s[i+36])) {
		return uuid.UUID{}, false
	}
	for k := 0; k < 36; k++ {
		c := s[i+k]
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return uuid.UUID{}, false
			}
		} else if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return uuid.UUID{}, false
		}
	}
	id, err := uuid.Parse(s[i : i+36])
	return id, err == nil
}

// parseDateLit parses a date or date-time literal; filters compare dates only.
func parseDateLit(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02", time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{kind: tLParen, pos: i})
			i++
		case c == ')':
			out = append(out, token{kind: tRParen, pos: i})
			i++
		case c == ',':
			out = append(out, token{kind: tComma, pos: i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, badQuery("Unterminated string literal at position %d in $filter.", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{kind: tString, text: b.String(), pos: i})
			i = j + 1
		default:
			if id, ok := lexGUID(s, i); ok {
				out = append(out, token{kind: tGUID, id: id, text: s[i : i+36], pos: i})
				i += 36
				continue
			}
			if isIdentStart(c) {
				j := i
				for j < len(s) && isIdentChar(s[j]) {
					j++
				}
				out = append(out, token{kind: tIdent, text: s[i:j], pos: i})
				i = j
				continue
			}
			if isDigit(c) || c == '-' && i+1 < len(s) && isDigit(s[i+1]) {
				j := i + 1
				for j < len(s) && (isDigit(s[j]) || strings.IndexByte(".-:TZ+eE", s[j]) >= 0) {
					j++
				}
				text := s[i:j]
				if len(text) >= 10 && text[4] == '-' && text[7] == '-' {
					t, ok := parseDateLit(text)
					if !ok {
						return nil, badQuery("Invalid date literal '%s' in $filter.", text)
					}
					out = append(out, token{kind: tDate, t: t, text: text, pos: i})
				} else {
					n, err := strconv.ParseFloat(strings.TrimRight(text, "mMdDfF"), 64)
					if err != nil || math.IsInf(n, 0) {
						return nil, badQuery("Invalid number literal '%s' in $filter.", text)
					}
					out = append(out, token{kind: tNumber, num: n, text: text, pos: i})
				}
				i = j
				continue
			}
			return nil, badQuery("Syntax error at position %d in $filter: unexpected character '%c'.", i, c)
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

// node is a compiled $filter expression.
type node interface{ match(e *entity) bool }

type andNode struct{ a, b node }

func (n andNode) match(e *entity) bool { return n.a.match(e) && n.b.match(e) }

// path is a property path (Customer/Number); all but the last step are references.
type path []*prop

func (p path) last() *prop { return p[len(p)-1] }

func (p path) eval(e *entity) value {
	for _, step := range p[:len(p)-1] {
		v := e.get(step)
		if v.isNull() || v.ref == nil {
			return null
		}
		e = v.ref
	}
	return e.get(p.last())
}

// literal is a filter operand compiled for the kind of its property.
type literal struct {
	v  value
	id uuid.UUID // references and Ids
}

type op uint8

const (
	opEq op = iota
	opGe
	opLe
)

type cmpNode struct {
	p      path
	op     op
	lit    literal
	orNull bool // equalnull and friends: a null property also matches
}

func (n cmpNode) match(e *entity) bool {
	v := n.p.eval(e)
	if v.isNull() {
		return n.orNull || n.op == opEq && n.lit.v.isNull()
	}
	if n.lit.v.isNull() {
		return false
	}
	c := compare(n.p.last().kind, v, n.lit)
	switch n.op {
	case opGe:
		return c >= 0
	case opLe:
		return c <= 0
	}
	return c == 0
}

type inNode struct {
	p    path
	lits []literal
}

func (n inNode) match(e *entity) bool {
	v := n.p.eval(e)
	for _, l := range n.lits {
		if v.isNull() {
			if l.v.isNull() {
				return true
			}
			continue
		}
		if !l.v.isNull() && compare(n.p.last().kind, v, l) == 0 {
			return true
		}
	}
	return false
}

type fnNode struct {
	p      path
	fn     string
	needle string
}

func (n fnNode) match(e *entity) bool {
	v := n.p.eval(e)
	if v.isNull() {
		return false
	}
	if n.p.last().kind == kML {
		for _, t := range mlText(v.s) {
			if textMatch(n.fn, t, n.needle) {
				return true
			}
		}
		return false
	}
	return textMatch(n.fn, v.s, n.needle)
}

// textMatch is case-insensitive, like ERP.net's database collation.
func textMatch(fn, s, needle string) bool {
	if len(needle) > len(s) {
		return false
	}
	switch fn {
	case "startswith":
		return strings.EqualFold(s[:len(needle)], needle)
	case "endswith":
		return strings.EqualFold(s[len(s)-len(needle):], needle)
	}
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return true
		}
	}
	return false
}

// compare orders a non-null property value against a non-null literal.
func compare(k kind, v value, l literal) int {
	switch k {
	case kString:
		if strings.EqualFold(v.s, l.v.s) {
			return 0
		}
		return strings.Compare(strings.ToLower(v.s), strings.ToLower(l.v.s))
	case kDate, kDateTime:
		return cmpFloat(math.Floor(v.n/86400), math.Floor(l.v.n/86400))
	case kRef, kGUID: // Id values carry their row in ref
		return strings.Compare(string(v.ref.id[:]), string(l.id[:]))
	}
	return cmpFloat(v.n, l.v.n)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// filterParser compiles $filter text against an entity set.
type filterParser struct {
	s    *Store
	set  *entitySet
	toks []token
	i    int
}

func (s *Store) parseFilter(set *entitySet, text string) (node, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &filterParser{s: s, set: set, toks: toks}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, badQuery("Syntax error at position %d in $filter: unexpected '%s'.", t.pos, tokText(t))
	}
	return n, nil
}

func tokText(t token) string {
	switch t.kind {
	case tLParen:
		return "("
	case tRParen:
		return ")"
	case tComma:
		return ","
	case tEOF:
		return "end of input"
	case tString:
		return "'" + t.text + "'"
	}
	return t.text
}

func (p *filterParser) peek() token { return p.toks[p.i] }
func (p *filterParser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *filterParser) expect(k tokKind, what string) error {
	if t := p.next(); t.kind != k {
		return badQuery("Syntax error at position %d in $filter: expected %s, found '%s'.", t.pos, what, tokText(t))
	}
	return nil
}

func (p *filterParser) expr() (node, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tIdent {
			return left, nil
		}
		switch strings.ToLower(t.text) {
		case "and":
			p.next()
			right, err := p.term()
			if err != nil {
				return nil, err
			}
			left = andNode{left, right}
		case "or":
			return nil, notSupported("The operator 'or' is not supported by the Domain API. Use 'in' for alternatives of one property.")
		default:
			return nil, badQuery("Syntax error at position %d in $filter: expected 'and', found '%s'.", t.pos, t.text)
		}
	}
}

var filterFuncs = map[string]bool{"contains": true, "startswith": true, "endswith": true,
	"equalnull": true, "lessequalnull": true, "greaterequalnull": true}

func (p *filterParser) term() (node, error) {
	t := p.next()
	switch {
	case t.kind == tLParen:
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		return n, p.expect(tRParen, "')'")
	case t.kind != tIdent:
		return nil, badQuery("Syntax error at position %d in $filter: expected a property or function, found '%s'.", t.pos, tokText(t))
	case strings.EqualFold(t.text, "not"):
		return nil, notSupported("The operator 'not' is not supported by the Domain API.")
	case p.peek().kind == tLParen:
		return p.function(t)
	}
	pth, err := p.s.resolvePath(p.set, t.text)
	if err != nil {
		return nil, err
	}
	o := p.next()
	if o.kind != tIdent {
		return nil, badQuery("Syntax error at position %d in $filter: expected an operator after '%s'.", o.pos, t.text)
	}
	switch opName := strings.ToLower(o.text); opName {
	case "eq", "ge", "le":
		lit, err := p.literal(pth)
		if err != nil {
			return nil, err
		}
		n := cmpNode{p: pth, op: map[string]op{"eq": opEq, "ge": opGe, "le": opLe}[opName], lit: lit}
		return n, checkOp(pth, n.op, lit)
	case "in":
		if err := p.expect(tLParen, "'(' after 'in'"); err != nil {
			return nil, err
		}
		var n inNode
		n.p = pth
		for {
			lit, err := p.literal(pth)
			if err != nil {
				return nil, err
			}
			if err := checkOp(pth, opEq, lit); err != nil {
				return nil, err
			}
			n.lits = append(n.lits, lit)
			if sep := p.next(); sep.kind == tRParen {
				return n, nil
			} else if sep.kind != tComma {
				return nil, badQuery("Syntax error at position %d in $filter: expected ',' or ')' in the 'in' list.", sep.pos)
			}
		}
	case "ne", "gt", "lt":
		return nil, notSupported("The operator '%s' is not supported by the Domain API. Supported: eq, ge, le, in, and.", opName)
	case "has", "add", "sub", "mul", "div", "mod":
		return nil, notSupported("The operator '%s' is not supported by the Domain API.", opName)
	}
	return nil, badQuery("Syntax error at position %d in $filter: unknown operator '%s'.", o.pos, o.text)
}

// checkOp rejects comparisons the property kind does not support.
func checkOp(pth path, o op, lit literal) error {
	last := pth.last()
	switch last.kind {
	case kML:
		return notSupported("The multi-language property '%s' can be filtered only with contains, startswith or endswith.", last.name)
	case kAmount, kQuantity:
		return notSupported("Filter the %s property '%s' through '%sValue'.", kindName(last.kind), last.name, last.name)
	case kLines:
		return notSupported("The collection '%s' cannot be filtered.", last.name)
	case kRef, kBool:
		if o != opEq {
			return notSupported("The property '%s' supports only eq and in.", last.name)
		}
	}
	if o != opEq && lit.v.isNull() {
		return badQuery("The null literal can only be compared with eq.")
	}
	return nil
}

func kindName(k kind) string {
	if k == kAmount {
		return "Amount"
	}
	return "Quantity"
}

func (p *filterParser) function(name token) (node, error) {
	fn := strings.ToLower(name.text)
	if !filterFuncs[fn] {
		return nil, notSupported("The function '%s' is not supported by the Domain API.", name.text)
	}
	p.next() // (
	arg := p.next()
	if arg.kind != tIdent {
		return nil, badQuery("The first argument of %s must be a property.", fn)
	}
	pth, err := p.s.resolvePath(p.set, arg.text)
	if err != nil {
		return nil, err
	}
	if err := p.expect(tComma, "','"); err != nil {
		return nil, err
	}
	var n node
	switch fn {
	case "contains", "startswith", "endswith":
		lit := p.next()
		if lit.kind != tString {
			return nil, badQuery("The second argument of %s must be a string literal.", fn)
		}
		if k := pth.last().kind; k != kString && k != kML {
			return nil, notSupported("%s applies only to text properties; '%s' is not one.", fn, pth.last().name)
		}
		n = fnNode{p: pth, fn: fn, needle: lit.text}
	default:
		lit, err := p.literal(pth)
		if err != nil {
			return nil, err
		}
		o := map[string]op{"equalnull": opEq, "lessequalnull": opLe, "greaterequalnull": opGe}[fn]
		if lit.v.isNull() {
			return nil, badQuery("%s needs a non-null value.", fn)
		}
		if err := checkOp(pth, o, lit); err != nil {
			return nil, err
		}
		n = cmpNode{p: pth, op: o, lit: lit, orNull: true}
	}
	return n, p.expect(tRParen, "')'")
}

// literal reads and compiles the operand for the property at the end of pth.
func (p *filterParser) literal(pth path) (literal, error) {
	t := p.next()
	pr := pth.last()
	if t.kind == tIdent && strings.EqualFold(t.text, "null") {
		return literal{v: null}, nil
	}
	bad := func(want string) (literal, error) {
		return literal{}, badQuery("Property '%s' expects %s, found '%s'.", pr.name, want, tokText(t))
	}
	switch pr.kind {
	case kString:
		if t.kind != tString {
			return bad("a string literal")
		}
		return literal{v: strVal(t.text)}, nil
	case kInt, kDecimal:
		if t.kind != tNumber {
			return bad("a number")
		}
		return literal{v: numVal(t.num)}, nil
	case kBool:
		if t.kind != tIdent || !strings.EqualFold(t.text, "true") && !strings.EqualFold(t.text, "false") {
			return bad("true or false")
		}
		return literal{v: boolVal(strings.EqualFold(t.text, "true"))}, nil
	case kDate, kDateTime:
		tm, ok := t.t, t.kind == tDate
		if t.kind == tString {
			tm, ok = parseDateLit(t.text)
		}
		if !ok {
			return bad("a date")
		}
		return literal{v: timeVal(dayStart(tm))}, nil // ERP.net truncates date-time filters to the date
	case kEnum:
		if t.kind != tString {
			return bad("an enumeration member name in quotes")
		}
		r, ok := pr.enum.rank(t.text)
		if !ok {
			return literal{}, badQuery("'%s' is not a member of %s (members: %s).", t.text, pr.enum.name, strings.Join(pr.enum.members, ", "))
		}
		return literal{v: value{s: t.text, n: float64(r)}}, nil
	case kGUID:
		if t.kind == tGUID {
			return literal{v: strVal(t.text), id: t.id}, nil
		}
		if t.kind == tString {
			if id, err := uuid.Parse(t.text); err == nil {
				return literal{v: strVal(t.text), id: id}, nil
			}
		}
		return bad("a GUID")
	case kRef:
		if t.kind != tString {
			return bad("a reference written as 'EntitySet(guid)'")
		}
		set, id, err := p.s.parseRef(t.text)
		if err != nil {
			return literal{}, err
		}
		if !compatible(p.s.sets[pr.target], set) {
			return literal{}, badQuery("Property '%s' refers to %s, not to %s.", pr.name, pr.target, set.name)
		}
		return literal{v: strVal(t.text), id: id}, nil
	}
	return literal{}, nil // the kind is refused by checkOp with a clear message
}

// compatible reports whether a reference to target may be written with set's name:
// the same set, or its base or derived set (parties, persons, companies).
func compatible(target, set *entitySet) bool {
	if target == nil || set == nil {
		return false
	}
	if target == set || target.base == set || set.base == target {
		return true
	}
	return false
}

// parseRef parses "Set(guid)" (also with a quoted key).
func (s *Store) parseRef(text string) (*entitySet, uuid.UUID, error) {
	open := strings.IndexByte(text, '(')
	if open < 0 || !strings.HasSuffix(text, ")") {
		return nil, uuid.UUID{}, badQuery("'%s' is not a reference; write it as 'EntitySet(guid)'.", text)
	}
	set := s.sets[text[:open]]
	if set == nil {
		return nil, uuid.UUID{}, badQuery("Unknown entity set '%s' in the reference '%s'.", text[:open], text)
	}
	key := strings.Trim(text[open+1:len(text)-1], "'")
	id, err := uuid.Parse(key)
	if err != nil || len(key) != 36 {
		return nil, uuid.UUID{}, badQuery("'%s' is not a valid key in the reference '%s'.", key, text)
	}
	return set, id, nil
}

// resolvePath resolves "Prop", "Ref/Prop" and "<Prop>Value" against set.
func (s *Store) resolvePath(set *entitySet, text string) (path, error) {
	var out path
	steps := strings.Split(text, "/")
	for i, name := range steps {
		pr := set.byName[name]
		if pr == nil {
			pr = valueProp(set, name)
		}
		if pr == nil {
			return nil, badQuery("The property '%s' is not defined on '%s'.", name, set.name)
		}
		out = append(out, pr)
		if i < len(steps)-1 {
			if pr.kind != kRef {
				return nil, badQuery("'%s' is not a reference; cannot navigate '%s'.", name, text)
			}
			set = s.sets[pr.target]
		}
	}
	return out, nil
}

// valueProp exposes the numeric part of an Amount or Quantity property as
// "<Prop>Value", the way ERP.net lets filters reach it.
func valueProp(set *entitySet, name string) *prop {
	base, ok := strings.CutSuffix(name, "Value")
	if !ok {
		return nil
	}
	p := set.byName[base]
	if p == nil || p.kind != kAmount && p.kind != kQuantity {
		return nil
	}
	return &prop{name: name, kind: kDecimal, idx: -1, readOnly: true, get: func(e *entity) value {
		v := e.get(p)
		if v.isNull() {
			return null
		}
		return numVal(v.n)
	}}
}
