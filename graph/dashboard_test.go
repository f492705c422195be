package graph_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// DashboardQuery is the deep query portals run on their start page: 20 orders with customer and party, lines
// with products, and the invoices of each order.
const dashboardQuery = `query Dashboard {
  salesOrders(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id documentNo documentDate state
      customer { id number party { name } }
      lines { lineNo quantity { value unit } unitPrice { amount currency } product { id partNumber name } }
      invoices { id documentNo documentDate }
    }
  }
}`

// upstreamCounter counts the Domain API reads erpclient sends, per entity set, looking inside $batch bodies.
type upstreamCounter struct {
	next    http.RoundTripper
	mu      sync.Mutex
	http    int            // HTTP requests to the Domain API
	sets    map[string]int // reads per entity set (a $batch part counts as one)
	targets []string       // the URLs read (relative inside $batch)
}

func (c *upstreamCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/api/domain/odata/") {
		var targets []string
		if strings.HasSuffix(r.URL.Path, "/$batch") && r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			sc := bufio.NewScanner(bytes.NewReader(body))
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), "GET "); ok {
					targets = append(targets, strings.Fields(line)[0])
				}
			}
		} else {
			targets = append(targets, r.URL.String())
		}
		c.mu.Lock()
		c.http++
		for _, t := range targets {
			c.sets[setOf(t)]++
			if u, err := url.QueryUnescape(t); err == nil {
				c.targets = append(c.targets, u)
			}
		}
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (c *upstreamCounter) reset() {
	c.mu.Lock()
	c.http, c.sets, c.targets = 0, map[string]int{}, nil
	c.mu.Unlock()
}

func (c *upstreamCounter) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.sets))
	for k, v := range c.sets {
		out[k] = v
	}
	return c.http, out
}

// setOf extracts the entity set of a Domain API URL (absolute or relative).
func setOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	p := u.Path
	if i := strings.Index(p, "/odata/"); i >= 0 {
		p = p[i+len("/odata/"):]
	}
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexAny(p, "(/"); i >= 0 {
		p = p[:i]
	}
	return p
}
