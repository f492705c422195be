package odata

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// maxBatch caps a $batch body.
const maxBatch = 16 << 20

func badBatch(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, codeBatch, typeBatch, format, args...)
}

// batchRequest is one application/http part.
type batchRequest struct {
	contentID string
	method    string
	path      string // relative to the service root, no leading slash
	rawQuery  string
	header    http.Header
	body      []byte
}

// batchItem is a top-level part: a single request or a changeset.
type batchItem struct {
	req       *batchRequest
	changeset []*batchRequest
}

// batch serves POST $batch (multipart/mixed). GET parts are answered in
// order; each changeset is atomic: it runs under the write lock and a
// failing request rolls the whole changeset back and answers its error.
func (h *handler) batch(w http.ResponseWriter, r *http.Request) error {
	items, err := h.parseBatch(r)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	mw := multipart.NewWriter(&out)
	_ = mw.SetBoundary("batchresponse_" + uuid.NewString())
	for _, it := range items {
		if it.changeset == nil {
			if err := h.sleepPart(r.Context()); err != nil {
				return err
			}
			rec := h.runOne(r, it.req)
			if err := writeHTTPPart(mw, it.req.contentID, rec); err != nil {
				return err
			}
			continue
		}
		for range it.changeset {
			if err := h.sleepPart(r.Context()); err != nil {
				return err
			}
		}
		recs, failed := h.runChangeset(r, it.changeset)
		if failed != nil {
			if err := writeHTTPPart(mw, failed.contentID, recs[0]); err != nil {
				return err
			}
			continue
		}
		var cs bytes.Buffer
		cw := multipart.NewWriter(&cs)
		_ = cw.SetBoundary("changesetresponse_" + uuid.NewString())
		for i, rec := range recs {
			if err := writeHTTPPart(cw, it.changeset[i].contentID, rec); err != nil {
				return err
			}
		}
		if err := cw.Close(); err != nil {
			return err
		}
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/mixed; boundary=" + cw.Boundary()}})
		if err != nil {
			return err
		}
		if _, err := pw.Write(cs.Bytes()); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.Header().Set("OData-Version", odataVersion)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
	return nil
}

// sleepPart applies the per-part latency knob.
func (h *handler) sleepPart(ctx context.Context) error {
	if h.opts.PartLatency == nil {
		return nil
	}
	d := h.opts.PartLatency()
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *handler) parseBatch(r *http.Request) ([]batchItem, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, badBatch("A $batch request needs Content-Type multipart/mixed with a boundary.")
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, maxBatch), params["boundary"])
	var items []batchItem
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badBatch("Malformed $batch body: %v.", err)
		}
		pmt, pparams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			return nil, badBatch("A $batch part lacks a valid Content-Type.")
		}
		switch pmt {
		case "application/http":
			req, err := h.readHTTPPart(part)
			if err != nil {
				return nil, err
			}
			items = append(items, batchItem{req: req})
		case "multipart/mixed":
			cs, err := h.readChangeset(part, pparams["boundary"])
			if err != nil {
				return nil, err
			}
			items = append(items, batchItem{changeset: cs})
		default:
			return nil, badBatch("Unsupported $batch part type '%s'.", pmt)
		}
	}
	return items, nil
}

func (h *handler) readChangeset(part io.Reader, boundary string) ([]*batchRequest, error) {
	if boundary == "" {
		return nil, badBatch("A changeset needs a boundary.")
	}
	mr := multipart.NewReader(part, boundary)
	var out []*batchRequest
	ids := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badBatch("Malformed changeset: %v.", err)
		}
		req, err := h.readHTTPPart(p)
		if err != nil {
			return nil, err
		}
		if req.method == http.MethodGet {
			return nil, badBatch("GET requests are not allowed inside a changeset.")
		}
		if req.contentID != "" {
			if ids[req.contentID] {
				return nil, badBatch("Content-ID %s is used twice in one changeset.", req.contentID)
			}
			ids[req.contentID] = true
		}
		out = append(out, req)
	}
	if len(out) == 0 {
		return nil, badBatch("Empty changeset.")
	}
	return out, nil
}

// readHTTPPart parses an application/http part. http.ReadRequest cannot be
// used: OData request lines carry URLs relative to the service root.
func (h *handler) readHTTPPart(p *multipart.Part) (*batchRequest, error) {
	br := bufio.NewReader(p)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	for err == nil && strings.TrimSpace(line) == "" {
		line, err = tp.ReadLine()
	}
	if err != nil {
		return nil, badBatch("A $batch part has no request line.")
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return nil, badBatch("Malformed request line '%s' in $batch.", line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, badBatch("Malformed headers in a $batch part.")
	}
	body, err := io.ReadAll(br)
	if err != nil {
		return nil, badBatch("Cannot read a $batch part.")
	}
	req := &batchRequest{contentID: p.Header.Get("Content-ID"), method: strings.ToUpper(fields[0]), header: http.Header(hdr),
		body: bytes.TrimRight(body, "\r\n")}
	if req.contentID == "" {
		req.contentID = hdr.Get("Content-ID")
	}
	req.path, req.rawQuery, err = h.relativeURL(fields[1])
	if err != nil {
		return nil, err
	}
	return req, nil
}

// relativeURL turns a part's URL (absolute, absolute path or relative to
// the service root) into a path relative to the service root.
func (h *handler) relativeURL(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", badBatch("Malformed URL '%s' in $batch.", raw)
	}
	p := u.Path
	if u.IsAbs() || strings.HasPrefix(p, "/") {
		rootPath := "/api/domain/odata/"
		if h.opts.ServiceRoot != "" {
			if ru, err := url.Parse(h.opts.ServiceRoot); err == nil {
				rootPath = ru.Path
			}
		}
		rest, ok := strings.CutPrefix(p, rootPath)
		if !ok {
			return "", "", badBatch("The URL '%s' is outside the service root.", raw)
		}
		p = rest
	}
	return p, u.RawQuery, nil
}

// recorder captures a part's response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder                    { return &recorder{header: http.Header{}} }
func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { r.ensure(); return r.body.Write(b) }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) ensure() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
}

// runOne answers a part outside changesets through the ordinary handler
// (a write there is its own atomic unit).
func (h *handler) runOne(outer *http.Request, br *batchRequest) *recorder {
	rec := newRecorder()
	target := "/" + br.path
	if br.rawQuery != "" {
		target += "?" + br.rawQuery
	}
	req, err := http.NewRequestWithContext(outer.Context(), br.method, target, bytes.NewReader(br.body))
	if err != nil {
		writeErr(rec, badBatch("Malformed request URL in $batch."))
		return rec
	}
	req.Host, req.TLS = outer.Host, outer.TLS
	req.Header = br.header
	var part http.Handler = h
	if h.opts.Part != nil {
		part = h.opts.Part(h)
	}
	part.ServeHTTP(rec, req)
	return rec
}

// runChangeset applies a changeset atomically. On failure it returns the
// failing request and a single error response; nothing is written.
func (h *handler) runChangeset(outer *http.Request, reqs []*batchRequest) ([]*recorder, *batchRequest) {
	var recs []*recorder
	var failed *batchRequest
	_, err := h.atomically(func(t *tx) (writeResult, error) {
		for _, br := range reqs {
			res, err := h.apply(outer.Context(), t, outer, br.method, br.path, br.rawQuery, br.body)
			if err != nil {
				failed = br
				return writeResult{}, err
			}
			if br.contentID != "" && res.entity != nil {
				t.ids[br.contentID] = res.entity
			}
			rec := newRecorder()
			for k, v := range res.header {
				rec.header[k] = v
			}
			if res.body != nil {
				writeJSON(rec, res.status, res.body)
			} else {
				rec.header.Set("OData-Version", odataVersion)
				rec.WriteHeader(res.status)
			}
			recs = append(recs, rec)
		}
		return writeResult{}, nil
	})
	if err != nil {
		rec := newRecorder()
		writeErr(rec, err)
		return []*recorder{rec}, failed
	}
	return recs, nil
}

// writeHTTPPart writes one application/http response part.
func writeHTTPPart(mw *multipart.Writer, contentID string, rec *recorder) error {
	rec.ensure()
	h := textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}}
	if contentID != "" {
		h.Set("Content-ID", contentID)
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", rec.status, http.StatusText(rec.status))
	if err := rec.header.Write(&b); err != nil {
		return err
	}
	b.WriteString("\r\n")
	b.Write(rec.body.Bytes())
	_, err = pw.Write(b.Bytes())
	return err
}
