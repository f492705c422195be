package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalDateTime writes t as an RFC 3339 string in UTC (the DateTime scalar).
func MarshalDateTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339)))
	})
}

// UnmarshalDateTime reads an RFC 3339 string (the DateTime scalar).
func UnmarshalDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("DateTime must be an RFC 3339 string")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("DateTime %q is not RFC 3339 (for example 2026-03-14T09:12:40Z)", s)
	}
	return t.UTC(), nil
}

// dateLayout is the Date scalar's form.
const dateLayout = "2006-01-02"

// MarshalDate writes the calendar date of t as YYYY-MM-DD (the Date scalar). ERP.net sends dates as midnight UTC,
// so the UTC date is the document's date.
func MarshalDate(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(t.UTC().Format(dateLayout)))
	})
}

// UnmarshalDate reads a YYYY-MM-DD string as midnight UTC (the Date scalar).
func UnmarshalDate(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("Date must be a YYYY-MM-DD string")
	}
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("Date %q is not YYYY-MM-DD (for example 2026-03-14)", s)
	}
	return t, nil
}

// Decimal is an exact decimal number kept as its text (the Decimal scalar), so no precision is lost between
// ERP.net and the client.
type Decimal string

var decimalRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// MarshalGQL writes the decimal as a JSON string.
func (d Decimal) MarshalGQL(w io.Writer) {
	io.WriteString(w, strconv.Quote(string(d)))
}

// UnmarshalGQL accepts a decimal string or a JSON number.
func (d *Decimal) UnmarshalGQL(v any) error {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return errors.New("Decimal must be a string or a number")
	}
	if len(s) > 64 || !decimalRE.MatchString(s) {
		return fmt.Errorf("Decimal %q is not a decimal number", s)
	}
	*d = Decimal(s)
	return nil
}
