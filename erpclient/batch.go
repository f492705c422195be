package erpclient

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
	"strings"

	"github.com/google/uuid"
)

// This file speaks OData's multipart $batch (docs/erpnet.md § $batch: POST
// …/odata/$batch, multipart/mixed, atomic changesets, Content-ID + $n
// references, response parts in request order).

// batch sends distinct GETs as one $batch and returns ERP.net's outer
// answer; splitBatch cuts a 2xx answer into the parts, in request order.
func (c *Client) batch(ctx context.Context, reqs []*request) (*response, error) {
	boundary := "batch_" + uuid.NewString()
	var b bytes.Buffer
	for _, r := range reqs {
		writePartHeader(&b, boundary, "")
		// request line, headers, blank line; the last CRLF belongs to the next delimiter
		target := c.target(r)
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nAccept: %s\r\n\r\n\r\n", r.method, target, accept(target))
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	c.stats.batches.Add(1)
	c.stats.batchParts.Add(int64(len(reqs)))
	return c.exchange(ctx, http.MethodPost, c.batchURL(), "multipart/mixed; boundary="+boundary, b.Bytes())
}

// splitBatch parses a 2xx $batch answer that must hold n parts.
func splitBatch(outer *response, n int) ([]*response, error) {
	parts, err := parseBatch(outer.header.Get("Content-Type"), outer.body)
	if err != nil {
		return nil, err
	}
	if len(parts) != n {
		return nil, fmt.Errorf("$batch answered %d parts for %d requests", len(parts), n)
	}
	return parts, nil
}

func (c *Client) batchURL() string { return c.target(&request{path: "$batch"}) }

func writePartHeader(b *bytes.Buffer, boundary, contentID string) {
	fmt.Fprintf(b, "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n", boundary)
	if contentID != "" {
		fmt.Fprintf(b, "Content-ID: %s\r\n", contentID)
	}
	b.WriteString("\r\n")
}

// maxBatchParts bounds what a response may contain, whatever the server sends.
const maxResponseParts = 1000

// parseBatch reads a multipart/mixed $batch response; changeset parts
// (nested multipart/mixed) are flattened in order.
func parseBatch(contentType string, body []byte) ([]*response, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.EqualFold(mt, "multipart/mixed") || params["boundary"] == "" {
		return nil, fmt.Errorf("$batch answer is not multipart/mixed (%q)", truncate(contentType, 80))
	}
	return parseMultipart(params["boundary"], body, 0)
}

func parseMultipart(boundary string, body []byte, depth int) ([]*response, error) {
	if depth > 1 {
		return nil, errors.New("$batch answer nests changesets")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var out []*response
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("$batch answer: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(p, maxBody))
		if err != nil {
			return nil, fmt.Errorf("$batch answer: %w", err)
		}
		mt, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch {
		case strings.EqualFold(mt, "multipart/mixed"):
			nested, err := parseMultipart(params["boundary"], data, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, nested...)
		default: // application/http
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
			if err != nil {
				return nil, fmt.Errorf("$batch answer part %d: %w", len(out)+1, err)
			}
			rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("$batch answer part %d: %w", len(out)+1, err)
			}
			out = append(out, &response{status: resp.StatusCode, header: resp.Header, body: rb})
		}
		if len(out) > maxResponseParts {
			return nil, errors.New("$batch answer has too many parts")
		}
	}
}

// changesetBody encodes write operations as one atomic changeset inside a $batch.
func (c *Client) changesetBody(ops []*changeOp) (contentType string, body []byte) {
	batchB := "batch_" + uuid.NewString()
	csB := "changeset_" + uuid.NewString()
	var b bytes.Buffer
	fmt.Fprintf(&b, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", batchB, csB)
	for i, op := range ops {
		writePartHeader(&b, csB, fmt.Sprint(i+1))
		target := op.path
		if !strings.HasPrefix(op.path, "$") { // "$n/..." refers to an earlier part and stays relative
			target = c.target(&request{path: op.path})
		}
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nAccept: application/json\r\n", op.method, target)
		if op.body != nil {
			fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(op.body))
			b.Write(op.body)
			b.WriteString("\r\n")
		} else {
			b.WriteString("\r\n\r\n")
		}
	}
	fmt.Fprintf(&b, "--%s--\r\n--%s--\r\n", csB, batchB)
	return "multipart/mixed; boundary=" + batchB, b.Bytes()
}
