package graph

import (
	"context"
	"net/http"
	"strings"

	"golang.org/x/text/language"

	"github.com/erpgraph/erpgraph/graph/model"
)

// maxLanguages bounds how many Accept-Language entries are considered.
const maxLanguages = 8

// acceptLanguages returns the ISO 639-1 base languages of the Accept-Language header, best first.
func acceptLanguages(r *http.Request) []string {
	h := r.Header.Get("Accept-Language")
	if h == "" || len(h) > 512 {
		return nil
	}
	tags, _, err := language.ParseAcceptLanguage(h)
	if err != nil {
		return nil
	}
	var out []string
	for _, t := range tags {
		base, conf := t.Base()
		if conf == language.No || base.String() == "und" {
			continue
		}
		out = append(out, base.String())
		if len(out) == maxLanguages {
			break
		}
	}
	return out
}

// validLanguage accepts ISO 639 codes of 2 or 3 letters.
func validLanguage(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// localize picks the text of a multi-language value: the `language` argument, else the Accept-Language
// languages, else the user's locale, else English, else any language.
func localize(ctx context.Context, t model.Texts, arg *string) (string, error) {
	var prefs []string
	if arg != nil {
		if !validLanguage(*arg) {
			return "", inputErrorf("language must be an ISO 639-1 code such as en or bg")
		}
		prefs = append(prefs, *arg)
	}
	rq := requestFrom(ctx)
	prefs = append(prefs, rq.languages...)
	if u := rq.user; u != nil && u.Locale != "" {
		base, _, _ := strings.Cut(u.Locale, "-")
		prefs = append(prefs, base)
	}
	for _, p := range prefs {
		if s, ok := t[strings.ToUpper(p)]; ok {
			return s, nil
		}
	}
	return fallbackText(t), nil
}

// fallbackText is English, else a language-less value, else the alphabetically first language (stable).
func fallbackText(t model.Texts) string {
	if s, ok := t["EN"]; ok {
		return s
	}
	if s, ok := t[""]; ok {
		return s
	}
	best := ""
	var out string
	for k, v := range t {
		if best == "" || k < best {
			best, out = k, v
		}
	}
	return out
}

// localizeOpt is localize for nullable fields: an empty text is null.
func localizeOpt(ctx context.Context, t model.Texts, arg *string) (*string, error) {
	s, err := localize(ctx, t, arg)
	if err != nil || s == "" {
		return nil, err
	}
	return &s, nil
}
