package odata_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func newHTTPTest(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
