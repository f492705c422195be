package erpclient

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"
)

// slowTexts is MultiLang's decoding through encoding/json, which the fast path must match.
func slowTexts(b []byte) (MultiLang, error) {
	var raw map[string]*string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := MultiLang{}
	for k, v := range raw {
		if v != nil && *v != "" {
			out[strings.ToUpper(k)] = *v
		}
	}
	return out, nil
}

// FuzzPlainTexts: whatever plainTexts accepts, encoding/json reads the same way.
func FuzzPlainTexts(f *testing.F) {
	for _, s := range []string{`{"EN":"Tea","BG":"Чай"}`, `{}`, ` { "en" : null , "bg":"x" } `, `{"EN":""}`, `{"a":"b",}`,
		`{"EN":"x"}}`, `{"EN":"a\"b"}`, `{"EN":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := plainTexts(b)
		if !ok {
			return
		}
		slow, err := slowTexts(b)
		if err != nil {
			t.Fatalf("plainTexts accepted %q, encoding/json refuses it: %v", b, err)
		}
		if !maps.Equal(fast, slow) {
			t.Fatalf("%q: fast %v, encoding/json %v", b, fast, slow)
		}
	})
}

// FuzzRefUnmarshal: the fast reference paths agree with decoding the object through encoding/json (which only
// ever hands an unmarshaler a valid JSON value).
func FuzzRefUnmarshal(f *testing.F) {
	for _, s := range []string{`{"@odata.id":"Crm_Sales_Customers(45e9a1b2-0266-53be-95ec-8fc63f706a74)"}`,
		`{"@odata.id":"Crm_Sales_Customers(45E9A1B2-0266-53BE-95EC-8FC63F706A74)","Id":"x"}`,
		`"General_Contacts_Parties(45e9a1b2-0266-53be-95ec-8fc63f706a74)"`, `{"@odata.id":"a(b)"}`,
		`{"@odata.id":"X(45e9a1b2-0266-53be-95ec-8fc63f706a74)"x}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var fast Ref
		if err := fast.UnmarshalJSON(b); err != nil {
			return
		}
		var id string
		if err := json.Unmarshal(b, &id); err != nil {
			var obj struct {
				ID string `json:"@odata.id"`
			}
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatalf("%q: decoded as %v, encoding/json refuses it: %v", b, fast, err)
			}
			id = obj.ID
		}
		slow, err := ParseRef(id)
		if err != nil || slow != fast {
			t.Fatalf("%q: fast %v, encoding/json %v (%v)", b, fast, slow, err)
		}
	})
}

// TestIsPath checks the identifier checks against the grammar they implement, written as regular expressions.
func TestIsPath(t *testing.T) {
	pathRE := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}(/[A-Za-z_][A-Za-z0-9_]{0,127}){0,7}$`)
	identRE := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	long := strings.Repeat("a", 128)
	for _, s := range []string{
		"", "Id", "_x", "x1", "1x", "SalesOrder/Id", "a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/h/i", "a/", "/a", "a//b",
		"Customer/Party/PartyName", "a b", "a-b", "Id eq 1", "Ä", "Id\n", long, long + "a", long + "/" + long,
		"CustomProperty_x", "a/1b", "$filter", "a.b",
	} {
		if got, want := isPath(s), pathRE.MatchString(s); got != want {
			t.Errorf("isPath(%q) = %v, want %v", s, got, want)
		}
		if got, want := isIdent(s), identRE.MatchString(s); got != want {
			t.Errorf("isIdent(%q) = %v, want %v", s, got, want)
		}
	}
}
