package erpclient_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/erpgraph/erpgraph/erpclient"
)

const (
	custID  = "10f76803-4130-40f8-bf73-a4e2b004417b"
	orderID = "5d1c0c1e-8a4b-4c2e-9d55-0b6f3f1a2b01"
)

func TestFilterString(t *testing.T) {
	day := time.Date(2025, 3, 14, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		f    erpclient.Filter
		want string
	}{
		{"string", erpclient.Eq("DocumentNo", erpclient.String("0000123")), "DocumentNo eq '0000123'"},
		{"quote doubled", erpclient.Eq("Notes", erpclient.String("O'Brien's")), "Notes eq 'O''Brien''s'"},
		{"int", erpclient.Ge("LineNo", erpclient.Int(-10)), "LineNo ge -10"},
		{"decimal", erpclient.Le("LineAmountValue", erpclient.Decimal("12.50")), "LineAmountValue le 12.50"},
		{"bool", erpclient.Eq("Void", erpclient.Bool(false)), "Void eq false"},
		{"date", erpclient.Ge("DocumentDate", erpclient.Date(day)), "DocumentDate ge 2025-03-14"},
		{"datetime", erpclient.Le("CreationTime", erpclient.DateTime(day)), "CreationTime le 2025-03-14T15:04:05Z"},
		{"guid upper-case normalized", erpclient.Eq("Id", erpclient.GUID(strings.ToUpper(orderID))), "Id eq " + orderID},
		{"ref", erpclient.Eq("Customer", erpclient.RefTo(erpclient.SetCustomers, custID)), "Customer eq 'Crm_Sales_Customers(" + custID + ")'"},
		{"ref path", erpclient.Eq("SalesOrder/Id", erpclient.GUID(orderID)), "SalesOrder/Id eq " + orderID},
		{"enum", erpclient.Ge("State", erpclient.Enum("Released")), "State ge 'Released'"},
		{"state value", erpclient.Eq("State", erpclient.StateReleased.Value()), "State eq 'Released'"},
		{"in", erpclient.In("State", erpclient.Enum("FirmPlanned"), erpclient.Enum("Released")), "State in ('FirmPlanned','Released')"},
		{"contains", erpclient.Contains("PartyName", "Iv'an"), "contains(PartyName,'Iv''an')"},
		{"startswith", erpclient.StartsWith("PartNumber", "00"), "startswith(PartNumber,'00')"},
		{"endswith", erpclient.EndsWith("PartNumber", "1"), "endswith(PartNumber,'1')"},
		{"and skips nil", erpclient.And(nil, erpclient.Eq("Void", erpclient.Bool(false)), nil, erpclient.Eq("LineNo", erpclient.Int(1))), "Void eq false and LineNo eq 1"},
		{"nested and", erpclient.And(erpclient.Eq("A", erpclient.Int(1)), erpclient.And(erpclient.Eq("B", erpclient.Int(2)), erpclient.Eq("C", erpclient.Int(3)))), "A eq 1 and (B eq 2 and C eq 3)"},
		{"unicode", erpclient.Contains("Name", "Кафе"), "contains(Name,'Кафе')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := erpclient.FilterString(tt.f)
			if err != nil {
				t.Fatalf("FilterString: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFilterString_Refused(t *testing.T) {
	tests := []struct {
		name string
		f    erpclient.Filter
	}{
		{"empty in", erpclient.In("Id")},
		{"injected property", erpclient.Eq("Name eq 'x' or 1 eq 1", erpclient.Int(1))},
		{"property with space", erpclient.Eq("Document No", erpclient.Int(1))},
		{"empty property", erpclient.Eq("", erpclient.Int(1))},
		{"property with paren", erpclient.Contains("Name)", "x")},
		{"trailing slash", erpclient.Eq("SalesOrder/", erpclient.Int(1))},
		{"bad guid", erpclient.Eq("Id", erpclient.GUID("1 or 1 eq 1"))},
		{"guid without hyphens", erpclient.Eq("Id", erpclient.GUID("5d1c0c1e8a4b4c2e9d550b6f3f1a2b01"))},
		{"bad ref set", erpclient.Eq("Customer", erpclient.RefTo("Crm(x)", custID))},
		{"bad ref id", erpclient.Eq("Customer", erpclient.RefTo(erpclient.SetCustomers, "x"))},
		{"decimal exponent", erpclient.Eq("QuantityValue", erpclient.Decimal("1e3"))},
		{"decimal text", erpclient.Eq("QuantityValue", erpclient.Decimal("1 or 1"))},
		{"enum with quote", erpclient.Eq("State", erpclient.Enum("Released' or 'a"))},
		{"control character", erpclient.Eq("Name", erpclient.String("a\nb"))},
		{"invalid utf-8", erpclient.Eq("Name", erpclient.String("a\xffb"))},
		{"nil value", erpclient.Eq("Name", nil)},
		{"and of nothing", erpclient.And()},
		{"and of nils", erpclient.And(nil, nil)},
		{"nil in element", erpclient.In("Id", erpclient.GUID(custID), nil)},
		{"year 0", erpclient.Eq("DocumentDate", erpclient.Date(time.Time{}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := erpclient.FilterString(tt.f)
			if !errors.Is(err, erpclient.ErrInvalidQuery) {
				t.Fatalf("got %q, %v; want ErrInvalidQuery", got, err)
			}
		})
	}
}

// scope is a ScopeFilter as access.Scope would give it: one customer.
type scope struct{ customers []string }

func (s scope) ScopeFilter(set string) (erpclient.Filter, error) {
	vs := make([]erpclient.Value, len(s.customers))
	for i, c := range s.customers {
		vs[i] = erpclient.RefTo(erpclient.SetCustomers, c)
	}
	switch set {
	case erpclient.SetSalesOrders, erpclient.SetInvoices:
		return erpclient.In("Customer", vs...), nil
	case erpclient.SetCustomers:
		ids := make([]erpclient.Value, len(s.customers))
		for i, c := range s.customers {
			ids[i] = erpclient.GUID(c)
		}
		return erpclient.In("Id", ids...), nil
	}
	return nil, errors.New("no access to " + set)
}

func TestQuery_Build(t *testing.T) {
	tests := []struct {
		name string
		q    erpclient.Query
		want url.Values
	}{
		{
			name: "select adds Id, orderby, top, count",
			q: erpclient.Query{Set: erpclient.SetProducts, Unscoped: true, Select: []string{"PartNumber", "Name", "PartNumber"},
				OrderBy: []erpclient.OrderBy{{Prop: "PartNumber"}, {Prop: "Name", Desc: true}}, Top: 50, Count: true},
			want: url.Values{"$select": {"Id,PartNumber,Name"}, "$orderby": {"PartNumber,Name desc"}, "$top": {"50"}, "$count": {"true"}},
		},
		{
			name: "scope is ANDed after the caller's filter",
			q: erpclient.Query{Set: erpclient.SetSalesOrders, Scope: scope{[]string{custID}},
				Filter: erpclient.Eq("State", erpclient.Enum("Released"))},
			want: url.Values{"$filter": {"State eq 'Released' and Customer in ('Crm_Sales_Customers(" + custID + ")')"}},
		},
		{
			name: "scope alone",
			q:    erpclient.Query{Set: erpclient.SetCustomers, Scope: scope{[]string{custID}}},
			want: url.Values{"$filter": {"Id in (" + custID + ")"}},
		},
		{
			name: "unscoped service read",
			q:    erpclient.Query{Set: erpclient.SetCustomerExternalAccess, Unscoped: true, Filter: erpclient.Eq("User", erpclient.RefTo(erpclient.SetUsers, custID))},
			want: url.Values{"$filter": {"User eq 'Systems_Security_Users(" + custID + ")'"}},
		},
		{
			name: "nested expand",
			q: erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Expand: []erpclient.Expand{
				{Prop: "Lines", Select: []string{"LineNo"}, Filter: erpclient.Ge("LineNo", erpclient.Int(10)), Top: 5,
					Expand: []erpclient.Expand{{Prop: "Product", Select: []string{"PartNumber"}}}},
				{Prop: "Customer"},
			}},
			want: url.Values{"$expand": {"Lines($select=Id,LineNo;$expand=Product($select=Id,PartNumber);$filter=LineNo ge 10;$top=5),Customer"}},
		},
		{
			name: "skiptoken cursor",
			q:    erpclient.Query{Set: erpclient.SetProducts, Unscoped: true, Top: 10, Cursor: &erpclient.Cursor{SkipToken: orderID}},
			want: url.Values{"$top": {"10"}, "$skiptoken": {orderID}},
		},
		{
			name: "skip cursor",
			q:    erpclient.Query{Set: erpclient.SetProducts, Top: 10, Cursor: &erpclient.Cursor{Skip: 20}},
			want: url.Values{"$top": {"10"}, "$skip": {"20"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Build()
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got.Encode() != tt.want.Encode() {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestQuery_Build_Refused(t *testing.T) {
	tests := []struct {
		name string
		q    erpclient.Query
		want error
	}{
		{"customer-owned set without scope", erpclient.Query{Set: erpclient.SetSalesOrders}, erpclient.ErrScopeRequired},
		{"lines without scope", erpclient.Query{Set: erpclient.SetInvoiceLines, Filter: erpclient.Eq("LineNo", erpclient.Int(1))}, erpclient.ErrScopeRequired},
		{"external access without scope", erpclient.Query{Set: erpclient.SetCustomerExternalAccess}, erpclient.ErrScopeRequired},
		{"bad set", erpclient.Query{Set: "Crm_Sales_SalesOrders?$top=1", Unscoped: true}, erpclient.ErrInvalidQuery},
		{"bad select", erpclient.Query{Set: erpclient.SetProducts, Select: []string{"Name,Id"}}, erpclient.ErrInvalidQuery},
		{"bad orderby", erpclient.Query{Set: erpclient.SetProducts, OrderBy: []erpclient.OrderBy{{Prop: "Name desc"}}}, erpclient.ErrInvalidQuery},
		{"negative top", erpclient.Query{Set: erpclient.SetProducts, Top: -1}, erpclient.ErrInvalidQuery},
		{"huge top", erpclient.Query{Set: erpclient.SetProducts, Top: 1 << 20}, erpclient.ErrInvalidQuery},
		{"skiptoken smuggling options", erpclient.Query{Set: erpclient.SetProducts, Cursor: &erpclient.Cursor{SkipToken: "x&$filter=1"}}, erpclient.ErrInvalidQuery},
		{"negative skip", erpclient.Query{Set: erpclient.SetProducts, Cursor: &erpclient.Cursor{Skip: -5}}, erpclient.ErrInvalidQuery},
		{"expand too deep", erpclient.Query{Set: erpclient.SetProducts, Expand: []erpclient.Expand{{Prop: "A", Expand: []erpclient.Expand{{Prop: "B", Expand: []erpclient.Expand{{Prop: "C", Expand: []erpclient.Expand{{Prop: "D", Expand: []erpclient.Expand{{Prop: "E"}}}}}}}}}}}, erpclient.ErrInvalidQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Build()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	// a scope that refuses the set refuses the query
	_, err := erpclient.Query{Set: erpclient.SetShipments, Scope: scope{[]string{custID}}}.Build()
	if err == nil {
		t.Fatal("scope error was not propagated")
	}
}

func TestScopeRequired(t *testing.T) {
	for _, set := range []string{erpclient.SetSalesOrders, erpclient.SetSalesOrderLines, erpclient.SetInvoices, erpclient.SetInvoiceLines,
		erpclient.SetShipments, erpclient.SetShipmentLines, erpclient.SetCustomers, erpclient.SetCustomerExternalAccess} {
		if !erpclient.ScopeRequired(set) {
			t.Errorf("ScopeRequired(%s) = false", set)
		}
	}
	for _, set := range []string{erpclient.SetProducts, erpclient.SetCurrencies, erpclient.SetMeasurementUnits} {
		if erpclient.ScopeRequired(set) {
			t.Errorf("ScopeRequired(%s) = true", set)
		}
	}
}

func TestCursor_EncodeDecode(t *testing.T) {
	for _, c := range []erpclient.Cursor{{SkipToken: orderID}, {Skip: 40}, {Skip: 3, SkipToken: "abc"}} {
		got, err := erpclient.DecodeCursor(c.Encode())
		if err != nil || *got != c {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	for _, s := range []string{"", "!!", "bm90IGEgY3Vyc29y", erpclient.Cursor{SkipToken: "a b"}.Encode(), erpclient.Cursor{Skip: -1}.Encode()} {
		if _, err := erpclient.DecodeCursor(s); !errors.Is(err, erpclient.ErrInvalidQuery) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrInvalidQuery", s, err)
		}
	}
}

// --- injection fuzzing ---

// token is one lexical token of a $filter, read by a tokenizer written for
// this test only (independent of the builder).
type token struct {
	kind string // ident, string, number, punct, keyword
	text string
}

var keywords = map[string]bool{"eq": true, "ge": true, "le": true, "and": true, "in": true, "or": true, "not": true,
	"ne": true, "gt": true, "lt": true, "contains": true, "startswith": true, "endswith": true, "true": true, "false": true}

func tokenize(t *testing.T, s string) []token {
	t.Helper()
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '\'':
			j := i + 1
			var lit strings.Builder
			for {
				if j >= len(s) {
					t.Fatalf("unterminated string literal in %q", s)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(s[j])
				j++
			}
			out = append(out, token{"string", lit.String()})
			i = j + 1
		case strings.IndexByte("(),", c) >= 0:
			out = append(out, token{"punct", string(c)})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" (),'", s[j]) < 0 {
				j++
			}
			w := s[i:j]
			switch {
			case keywords[w]:
				out = append(out, token{"keyword", w})
			case strings.IndexByte("-0123456789", w[0]) >= 0:
				out = append(out, token{"number", w})
			default:
				out = append(out, token{"ident", w})
			}
			i = j
		}
	}
	return out
}

// shape is the token structure with literal contents blanked.
func shape(ts []token) string {
	var b strings.Builder
	for _, tk := range ts {
		if tk.kind == "string" {
			b.WriteString("<str> ")
		} else {
			b.WriteString(tk.kind + ":" + tk.text + " ")
		}
	}
	return b.String()
}

func injectionFilter(s string) erpclient.Filter {
	return erpclient.And(
		erpclient.Eq("DocumentNo", erpclient.String(s)),
		erpclient.Contains("PartyName", s),
		erpclient.In("Notes", erpclient.String(s), erpclient.String("x")),
		erpclient.Eq("Customer", erpclient.RefTo(erpclient.SetCustomers, custID)),
		erpclient.StartsWith("Code", s),
	)
}

// FuzzFilterInjection shows that no string value changes the structure of a
// filter: the built $filter always has the shape of the same filter built
// from a harmless value, every string literal decodes back to the value,
// and the encoded query string carries exactly the one $filter option.
func FuzzFilterInjection(f *testing.F) {
	for _, seed := range []string{
		"", "x", "'", "''", "' or 1 eq 1 or '", "O'Brien", "a') or (1 eq 1", "x' and Id eq 5d1c0c1e-8a4b-4c2e-9d55-0b6f3f1a2b01 and 'a' eq 'a",
		"&$top=1", "#frag", "%27", "%00", "a;b", "$filter=Id", "\\'", "Кафе", "😀'", "') , ('", "a=b&c=d", "+ +", "x)) or ((",
		"' or true or '", strings.Repeat("'", 999),
	} {
		f.Add(seed)
	}
	want, err := erpclient.FilterString(injectionFilter("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := erpclient.FilterString(injectionFilter(s))
		if err != nil {
			// refusing is fine (control characters, invalid UTF-8, too long), never a panic
			if !errors.Is(err, erpclient.ErrInvalidQuery) {
				t.Fatalf("error %v does not wrap ErrInvalidQuery", err)
			}
			if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) && len(s) <= 1000 {
				t.Fatalf("refused a plain value %q: %v", s, err)
			}
			return
		}
		gt, wt := tokenize(t, got), tokenize(t, want)
		if shape(gt) != shape(wt) {
			t.Fatalf("value %q changed the filter structure:\n got %s\nwant %s", s, shape(gt), shape(wt))
		}
		for _, tk := range gt {
			if tk.kind == "string" && tk.text != s && tk.text != "x" && !strings.HasPrefix(tk.text, erpclient.SetCustomers+"(") {
				t.Fatalf("literal %q does not decode to the value %q", tk.text, s)
			}
		}
		// and through the URL: one $filter option, decoding to exactly the text built
		v, err := erpclient.Query{Set: erpclient.SetProducts, Filter: injectionFilter(s), Top: 5}.Build()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := url.ParseQuery(erpclient.EncodeQuery(v))
		if err != nil || len(parsed) != 2 || parsed.Get("$filter") != got || parsed.Get("$top") != "5" {
			t.Fatalf("query string for %q parsed to %v (%v)", s, parsed, err)
		}
	})
}

// FuzzDecodeCursor: any client-supplied cursor string is either refused with
// ErrInvalidQuery or yields a cursor that builds into a valid query.
func FuzzDecodeCursor(f *testing.F) {
	for _, seed := range []string{"", "MHw1ZDFj", erpclient.Cursor{Skip: 5}.Encode(), erpclient.Cursor{SkipToken: orderID}.Encode(), "!!!", "MHwmJGZpbHRlcj0x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := erpclient.DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, erpclient.ErrInvalidQuery) {
				t.Fatalf("error %v is not ErrInvalidQuery", err)
			}
			return
		}
		v, err := erpclient.Query{Set: erpclient.SetProducts, Top: 10, Cursor: c}.Build()
		if err != nil {
			t.Fatalf("decoded cursor %+v does not build: %v", c, err)
		}
		parsed, err := url.ParseQuery(erpclient.EncodeQuery(v))
		if err != nil || len(parsed) > 3 {
			t.Fatalf("cursor %+v smuggled options: %v", c, parsed)
		}
	})
}

// FuzzParseRef: any @odata.id either parses into a valid set name and a
// canonical GUID or is refused; never a panic.
func FuzzParseRef(f *testing.F) {
	for _, seed := range []string{"Crm_Sales_Customers(" + custID + ")", "https://x/odata/Set('" + custID + "')", "Set(", "()", "Set(" + custID + ")/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := erpclient.ParseRef(s)
		if err != nil {
			return
		}
		if _, err := erpclient.FilterString(erpclient.Eq("Customer", r.Value())); err != nil {
			t.Fatalf("parsed ref %+v is not a valid literal: %v", r, err)
		}
	})
}
