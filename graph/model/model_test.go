package model

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestID_RoundTrip(t *testing.T) {
	id := EncodeID("SalesOrder", "06e92365-6c7c-5e8e-b2ee-ad43b0aab3c2")
	typ, guid, err := DecodeID(id)
	if err != nil || typ != "SalesOrder" || guid != "06e92365-6c7c-5e8e-b2ee-ad43b0aab3c2" {
		t.Fatalf("DecodeID(%q) = %q, %q, %v", id, typ, guid, err)
	}
	// upper-case GUIDs and padded base64 are read in canonical form
	padded := base64.URLEncoding.EncodeToString([]byte("Customer:06E92365-6C7C-5E8E-B2EE-AD43B0AAB3C2"))
	if _, g, err := DecodeID(padded); err != nil || g != "06e92365-6c7c-5e8e-b2ee-ad43b0aab3c2" {
		t.Errorf("padded upper-case: %q, %v", g, err)
	}
	if _, err := DecodeIDOf("Invoice", id); !errors.Is(err, ErrInvalidID) {
		t.Errorf("DecodeIDOf with the wrong type: %v", err)
	}
}

func TestDecodeID_Invalid(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, id := range []string{
		"", "%%%", enc("SalesOrder"), enc(":06e92365-6c7c-5e8e-b2ee-ad43b0aab3c2"), enc("SalesOrder:not-a-guid"),
		enc("SalesOrder:06e92365-6c7c-5e8e-b2ee-ad43b0aab3c2' or '1'='1"), enc("SalesOrder:{06e92365-6c7c-5e8e-b2ee-ad43b0aab3c2}"),
		enc("SalesOrder:06e923656c7c5e8eb2eead43b0aab3c2"),
	} {
		if _, _, err := DecodeID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("DecodeID(%q) accepted", id)
		}
	}
}

func TestDecimal(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want Decimal
	}{
		{"12.50", "12.50"}, {"-0.125", "-0.125"}, {json.Number("1e3"), "1e3"}, {int64(7), "7"}, {2.5, "2.5"},
	} {
		var d Decimal
		if err := d.UnmarshalGQL(tt.in); err != nil || d != tt.want {
			t.Errorf("UnmarshalGQL(%v) = %q, %v; want %q", tt.in, d, err, tt.want)
		}
	}
	for _, bad := range []any{"", "1,5", "NaN", "1.", ".5", "--1", true, "12345678901234567890123456789012345678901234567890123456789012345"} {
		var d Decimal
		if err := d.UnmarshalGQL(bad); err == nil {
			t.Errorf("UnmarshalGQL(%v) accepted", bad)
		}
	}
	var b bytes.Buffer
	Decimal("1234.50").MarshalGQL(&b)
	if b.String() != `"1234.50"` {
		t.Errorf("MarshalGQL = %s", b.String())
	}
}

func TestDateScalars(t *testing.T) {
	d, err := UnmarshalDate("2026-03-14")
	if err != nil || !d.Equal(time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("UnmarshalDate = %v, %v", d, err)
	}
	for _, bad := range []any{"2026-3-14", "2026-03-14T00:00:00Z", 20260314, "14.03.2026"} {
		if _, err := UnmarshalDate(bad); err == nil {
			t.Errorf("UnmarshalDate(%v) accepted", bad)
		}
	}
	var b bytes.Buffer
	MarshalDate(time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)).MarshalGQL(&b)
	if b.String() != `"2026-03-14"` {
		t.Errorf("MarshalDate = %s", b.String())
	}
	b.Reset()
	MarshalDateTime(time.Date(2026, 3, 14, 11, 12, 40, 0, time.FixedZone("EET", 2*3600))).MarshalGQL(&b)
	if b.String() != `"2026-03-14T09:12:40Z"` {
		t.Errorf("MarshalDateTime = %s", b.String())
	}
	if _, err := UnmarshalDateTime("yesterday"); err == nil {
		t.Error("UnmarshalDateTime accepted junk")
	}
}
