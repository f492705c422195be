package erpclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Ref is a reference to another entity, decoded from {"@odata.id":"Set(guid)"}.
// Expanded references carry more properties; Ref keeps only the identity
// (expand into a typed struct when the properties are needed).
type Ref struct {
	Set string
	ID  string
}

// String is the OData entity id, Set(guid).
func (r Ref) String() string { return r.Set + "(" + r.ID + ")" }

// Value is the reference as a filter literal, 'Set(guid)'.
func (r Ref) Value() Value { return RefTo(r.Set, r.ID) }

// ParseRef parses an OData entity id "Set(guid)" (relative, as ERP.net sends
// it, or absolute: only the last path segment counts).
func ParseRef(s string) (Ref, error) {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return Ref{}, fmt.Errorf("erpclient: %q is not an entity id Set(guid)", truncate(s, 80))
	}
	set, id := s[:open], s[open+1:len(s)-1]
	if !isIdent(set) {
		return Ref{}, fmt.Errorf("erpclient: %q is not an entity id Set(guid)", truncate(s, 80))
	}
	if canonicalForm(id) {
		return Ref{Set: set, ID: id}, nil
	}
	id = strings.Trim(id, "'") // tolerate quoted keys
	g, err := canonicalGUID(id)
	if err != nil {
		return Ref{}, fmt.Errorf("erpclient: entity id %q: key is not a GUID", truncate(s, 80))
	}
	return Ref{Set: set, ID: g}, nil
}

// UnmarshalJSON reads {"@odata.id":"Set(guid)", ...}; also accepts the bare
// string "Set(guid)".
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	id, ok := leadingODataID(b)
	if !ok {
		id, ok = plainString(b)
	}
	switch {
	case ok:
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &id); err != nil {
			return err
		}
	default:
		var obj struct {
			ID string `json:"@odata.id"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("erpclient: reference: %w", err)
		}
		id = obj.ID
	}
	ref, err := ParseRef(id)
	if err != nil {
		return err
	}
	*r = ref
	return nil
}

// MarshalJSON writes {"@odata.id":"Set(guid)"}, the form ERP.net accepts in bodies.
func (r Ref) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"@odata.id": r.String()})
}

// MultiLang is a multi-language string keyed by upper-case language code
// ("EN", "BG").
type MultiLang map[string]string

// UnmarshalJSON normalizes keys to upper case (one ERP.net doc page shows
// lower case) and accepts a plain string as a language-less value.
func (m *MultiLang) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if t, ok := plainTexts(b); ok {
		*m = t
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*m = MultiLang{"": s}
		return nil
	}
	var raw map[string]*string
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("erpclient: multi-language string: %w", err)
	}
	out := make(MultiLang, len(raw))
	for k, v := range raw {
		if v != nil && *v != "" {
			out[strings.ToUpper(k)] = *v
		}
	}
	*m = out
	return nil
}

// Get returns the text in lang, else in the first fallback that has one,
// else English, else any language (the alphabetically first, so the answer
// is stable). Language codes are case-insensitive.
func (m MultiLang) Get(lang string, fallback ...string) string {
	for _, l := range append([]string{lang}, fallback...) {
		if s, ok := m[strings.ToUpper(l)]; ok && l != "" {
			return s
		}
	}
	if s, ok := m["EN"]; ok {
		return s
	}
	if s, ok := m[""]; ok {
		return s
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return m[keys[0]]
}

// Decimal is an exact decimal number kept as its text ("12.50"), so amounts
// never pass through float64.
type Decimal string

// UnmarshalJSON accepts a JSON number (ERP.net's usual form) or a string
// holding one (seen in one doc example).
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if isPlainDecimal(s) {
		*d = Decimal(s)
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	norm, err := normalizeDecimal(s)
	if err != nil {
		return err
	}
	*d = Decimal(norm)
	return nil
}

// MarshalJSON writes the decimal as a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if d == "" {
		return []byte("0"), nil
	}
	if !decimalRE.MatchString(string(d)) {
		return nil, fmt.Errorf("erpclient: %q is not a decimal", truncate(string(d), 40))
	}
	return []byte(d), nil
}

// String returns the decimal text ("0" for the zero value).
func (d Decimal) String() string {
	if d == "" {
		return "0"
	}
	return string(d)
}

// Float64 converts for display or arithmetic that tolerates rounding.
func (d Decimal) Float64() float64 {
	f, _ := strconv.ParseFloat(d.String(), 64)
	return f
}

// normalizeDecimal turns a JSON number (which may use an exponent, as
// serializers do for very small or large values) into plain decimal text.
func normalizeDecimal(s string) (string, error) {
	if isPlainDecimal(s) {
		return s, nil
	}
	if !json.Valid([]byte(s)) || strings.ContainsAny(s, "\"{}[]ntf") {
		return "", fmt.Errorf("erpclient: %q is not a decimal number", truncate(s, 40))
	}
	// exponent form: expand exactly with big-decimal-free string arithmetic
	mant, expText, ok := strings.Cut(strings.ToLower(s), "e")
	if !ok {
		return "", fmt.Errorf("erpclient: %q is not a decimal number", truncate(s, 40))
	}
	exp, err := strconv.Atoi(expText)
	if err != nil || exp > 40 || exp < -40 {
		return "", fmt.Errorf("erpclient: %q is out of decimal range", truncate(s, 40))
	}
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + exp
	switch {
	case point <= 0:
		digits = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		digits += strings.Repeat("0", point-len(digits))
	default:
		digits = digits[:point] + "." + digits[point:]
	}
	if strings.Contains(digits, ".") {
		digits = strings.TrimRight(strings.TrimRight(digits, "0"), ".")
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" || digits[0] == '.' {
		digits = "0" + digits
	}
	if neg && digits != "0" {
		digits = "-" + digits
	}
	if !decimalRE.MatchString(digits) {
		return "", fmt.Errorf("erpclient: %q is out of decimal range", truncate(s, 40))
	}
	return digits, nil
}

// Amount is a money amount {"Value":20,"Currency":"BGN"}.
type Amount struct {
	Value    Decimal `json:"Value"`
	Currency string  `json:"Currency"`
}

// Quantity is a measured quantity {"Value":5,"Unit":"pcs"}.
type Quantity struct {
	Value Decimal `json:"Value"`
	Unit  string  `json:"Unit"`
}

// DocumentState is the state of an ERP.net document, serialized by name.
type DocumentState string

// Document states, in their order (ERP.net compares them: State ge 'Released').
const (
	StateNew         DocumentState = "New"
	StateAdjustment  DocumentState = "Adjustment"
	StatePlanned     DocumentState = "Planned"
	StateFirmPlanned DocumentState = "FirmPlanned"
	StateReleased    DocumentState = "Released"
	StateCompleted   DocumentState = "Completed"
	StateClosed      DocumentState = "Closed"
)

var stateRank = map[DocumentState]int{
	StateNew: 0, StateAdjustment: 5, StatePlanned: 10, StateFirmPlanned: 20,
	StateReleased: 30, StateCompleted: 40, StateClosed: 50,
}

// Valid reports whether s is a known state.
func (s DocumentState) Valid() bool { _, ok := stateRank[s]; return ok }

// Rank is ERP.net's numeric value of the state (New=0 … Closed=50), -1 if unknown.
func (s DocumentState) Rank() int {
	if r, ok := stateRank[s]; ok {
		return r
	}
	return -1
}

// Value is the state as a filter literal.
func (s DocumentState) Value() Value { return Enum(string(s)) }

// DateTime is a point in time from ERP.net JSON. ERP.net sends
// "2020-05-08T00:00:00Z"; date-only "2020-05-08" is accepted too (UTC
// midnight). Convert with DateTime(t) and d.Time(); as a Value it is a
// date-time filter literal.
type DateTime time.Time

// Time returns the time.Time (UTC).
func (d DateTime) Time() time.Time { return time.Time(d) }

// IsZero reports whether d is unset (null or absent in the JSON).
func (d DateTime) IsZero() bool { return time.Time(d).IsZero() }

// String is RFC 3339.
func (d DateTime) String() string { return time.Time(d).UTC().Format(time.RFC3339Nano) }

var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02Z07:00", "2006-01-02"}

// ParseDateTime parses the forms ERP.net uses for dates and date-times.
func ParseDateTime(s string) (DateTime, error) {
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return DateTime(t.UTC()), nil
		}
	}
	return DateTime{}, fmt.Errorf("erpclient: %q is not a date or date-time", truncate(s, 40))
}

// UnmarshalJSON reads a date or date-time string; null leaves the zero value.
func (d *DateTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	s, ok := plainString(b)
	if !ok {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("erpclient: date: %w", err)
		}
	}
	t, err := ParseDateTime(s)
	if err != nil {
		return err
	}
	*d = t
	return nil
}

// MarshalJSON writes RFC 3339 in UTC, the form ERP.net sends; zero is null.
func (d DateTime) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(d.String())
}
