package erpclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serveFixture answers every GET with a testdata file, nextLink rewritten to the fake's host.
func (f *fakeERP) serveFixture(t *testing.T, name string) {
	body := strings.ReplaceAll(readFixture(t, name), "http://127.0.0.1:8089/api/domain/odata/", f.srv.URL+"/odata/")
	f.answer = func(string, string, string, []byte) (int, http.Header, string) { return 200, nil, body }
}

func TestList_DecodesSalesOrders(t *testing.T) {
	f := newFake(t)
	f.serveFixture(t, "salesorders_page.json")
	c := f.client(t, nil)
	p, err := erpclient.List[erpclient.SalesOrder](context.Background(), c, erpclient.Query{
		Set: erpclient.SetSalesOrders, Unscoped: true, Top: 1, Count: true, Expand: []erpclient.Expand{{Prop: "Lines"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Count == nil || *p.Count != 1000 {
		t.Fatalf("items %d, count %v", len(p.Items), p.Count)
	}
	o := p.Items[0]
	if o.ID != orderID || o.DocumentNo != "0000123" || o.State != erpclient.StateReleased || o.Void {
		t.Errorf("order header: %+v", o)
	}
	if got := o.DocumentDate.Time(); !got.Equal(time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("DocumentDate = %v", got)
	}
	if o.RequiredDeliveryDate == nil || o.RequiredDeliveryDate.Time().Day() != 20 {
		t.Errorf("date-only RequiredDeliveryDate = %v", o.RequiredDeliveryDate)
	}
	if o.Customer == nil || *o.Customer != (erpclient.Ref{Set: erpclient.SetCustomers, ID: custID}) {
		t.Errorf("Customer = %v", o.Customer)
	}
	if o.ToParty == nil || o.ToParty.Set != erpclient.SetCompanies {
		t.Errorf("ToParty = %v", o.ToParty)
	}
	if o.DocumentNotes != "" || o.ShipToCustomer != nil {
		t.Errorf("nulls: %q %v", o.DocumentNotes, o.ShipToCustomer)
	}
	if len(o.Lines) != 1 {
		t.Fatalf("lines: %d", len(o.Lines))
	}
	l := o.Lines[0]
	if l.ID != "c253add9-0f43-df11-a1e1-0018f3790817" || l.LineNo != 10 {
		t.Errorf("line id %q no %d", l.ID, l.LineNo)
	}
	if l.UnitPrice == nil || l.UnitPrice.Value != "0.9" || l.UnitPrice.Currency != "BGN" || l.LineAmount.Value != "1.8" {
		t.Errorf("amounts: %+v %+v", l.UnitPrice, l.LineAmount)
	}
	if l.Quantity == nil || l.Quantity.Value != "2" || l.Quantity.Unit != "pcs" {
		t.Errorf("quantity: %+v", l.Quantity)
	}
	if got := l.ProductDescription.Get("bg"); got != "Kafe mashina" {
		t.Errorf("BG description %q", got)
	}
	if got := l.ProductDescription.Get("de", "fr"); got != "Coffee Maker" {
		t.Errorf("fallback to EN: %q", got)
	}
	if p.Next == nil || p.Next.SkipToken != orderID || p.Next.Skip != 0 {
		t.Errorf("next cursor %+v", p.Next)
	}
}

func TestList_DecodesOtherShapes(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	ctx := context.Background()

	f.serveFixture(t, "person.json")
	persons, err := erpclient.All[erpclient.Person](ctx, c, erpclient.Query{Set: erpclient.SetPersons})
	if err != nil || len(persons) != 1 {
		t.Fatalf("persons: %v %v", persons, err)
	}
	if p := persons[0]; p.ID != "2e97f255-f410-4925-8c51-211c8eaa18b8" || p.FirstName.Get("BG") != "Иван" || p.PartyName.Get("en") != "Ivan Petrov" || p.BirthDate.Time().Month() != 2 {
		t.Errorf("person: %+v", p)
	}

	f.serveFixture(t, "external_access.json")
	acc, err := erpclient.All[erpclient.CustomerExternalAccess](ctx, c, erpclient.Query{Set: erpclient.SetCustomerExternalAccess, Unscoped: true})
	if err != nil || len(acc) != 1 {
		t.Fatalf("access: %v %v", acc, err)
	}
	if a := acc[0]; a.Role != "OrdersBilling" || a.DaysBackAccess == nil || *a.DaysBackAccess != 30 || a.User.ID != "9da64839-a8d0-491d-aebb-4d18fa42b014" || a.ShipToCustomer != nil {
		t.Errorf("access: %+v", a)
	}

	f.serveFixture(t, "product_amount_strings.json")
	prods, err := erpclient.All[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts})
	if err != nil || len(prods) != 1 {
		t.Fatalf("products: %v %v", prods, err)
	}
	if p := prods[0]; p.StandardPricePerLot.Value != "12.50" || p.MeasurementUnit.Set != erpclient.SetMeasurementUnits {
		t.Errorf("product: %+v", p)
	}
}

func TestDecimal_Unmarshal(t *testing.T) {
	tests := map[string]string{`0.9`: "0.9", `"12.50"`: "12.50", `1e-7`: "0.0000001", `1.5E3`: "1500", `-2.50e1`: "-25", `0`: "0", `100`: "100"}
	for in, want := range tests {
		var d erpclient.Decimal
		if err := d.UnmarshalJSON([]byte(in)); err != nil || string(d) != want {
			t.Errorf("%s → %q, %v; want %q", in, d, err, want)
		}
	}
	for _, in := range []string{`"abc"`, `true`, `{}`, `"1 or 1"`, `1e999`} {
		var d erpclient.Decimal
		if err := d.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%s accepted as %q", in, d)
		}
	}
}

func TestParseRef(t *testing.T) {
	r, err := erpclient.ParseRef("General_Contacts_Companies(BC60D0BC-2804-4E3C-B355-04184AEF5505)")
	if err != nil || r.Set != erpclient.SetCompanies || r.ID != "bc60d0bc-2804-4e3c-b355-04184aef5505" {
		t.Errorf("got %+v, %v", r, err)
	}
	if r.String() != "General_Contacts_Companies(bc60d0bc-2804-4e3c-b355-04184aef5505)" {
		t.Errorf("String %q", r.String())
	}
	for _, bad := range []string{"", "Set", "Set()", "(x)", "Set(1)", "Se t(" + custID + ")", "Set(" + custID} {
		if _, err := erpclient.ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

// TestList_NextLinkElsewhereRefused: a nextLink to another host or resource
// is never followed (it would carry the token there or read other data).
func TestList_NextLinkElsewhereRefused(t *testing.T) {
	for _, link := range []string{"https://evil.example/odata/General_Products_Products?$skiptoken=x", "/odata/Crm_Sales_Customers?$skip=5", "/odata/General_Products_Products?$skip=abc", "/odata/General_Products_Products?$top=5"} {
		f := newFake(t)
		f.answer = func(string, string, string, []byte) (int, http.Header, string) {
			return 200, nil, `{"@odata.nextLink":"` + link + `","value":[]}`
		}
		c := f.client(t, nil)
		_, err := erpclient.List[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts, Top: 5})
		if !errors.Is(err, erpclient.ErrUnavailable) {
			t.Errorf("nextLink %s: err %v, want ErrUnavailable", link, err)
		}
	}
}

func TestAll_FollowsPages(t *testing.T) {
	f := newFake(t)
	f.answer = func(_, _, rawQuery string, _ []byte) (int, http.Header, string) {
		switch {
		case !strings.Contains(rawQuery, "skip"):
			return 200, nil, `{"@odata.nextLink":"` + f.srv.URL + `/odata/General_Products_Products?$top=2&$skip=2","value":[{"PartNumber":"1"},{"PartNumber":"2"}]}`
		case strings.Contains(rawQuery, "$skip=2"):
			return 200, nil, `{"@odata.nextLink":"General_Products_Products?$top=2&$skip=4","value":[{"PartNumber":"3"},{"PartNumber":"4"}]}`
		}
		return 200, nil, `{"value":[{"PartNumber":"5"}]}`
	}
	c := f.client(t, nil)
	got, err := erpclient.All[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts, Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	var nums []string
	for _, p := range got {
		nums = append(nums, p.PartNumber)
	}
	if strings.Join(nums, ",") != "1,2,3,4,5" {
		t.Errorf("got %v", nums)
	}
	if n := len(f.log()); n != 3 {
		t.Errorf("%d upstream requests, want 3", n)
	}
}

func TestErrors_Mapping(t *testing.T) {
	envelope := func(code int, typ, msg string) string {
		return fmt.Sprintf(`{"error":{"message":%q,"code":%d,"type":%q,"info":"stack trace here"}}`, msg, code, typ)
	}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		want       error
		notWant    error
		retryAfter time.Duration
	}{
		{"not found", 404, nil, envelope(0, "NotFound", "Entity not found"), erpclient.ErrNotFound, erpclient.ErrUnavailable, 0},
		{"unauthorized", 401, nil, "", erpclient.ErrUnauthorized, nil, 0},
		{"forbidden", 403, nil, envelope(0, "Forbidden", "update scope required"), erpclient.ErrForbidden, nil, 0},
		{"rate limited", 429, http.Header{"Retry-After": {"7"}}, envelope(0, "TooManyRequests", "Too many requests"), erpclient.ErrBusy, erpclient.ErrUnavailable, 7 * time.Second},
		{"license", 503, http.Header{"Retry-After": {"60"}}, readFixture(t, "license_error.json"), erpclient.ErrBusy, erpclient.ErrUnavailable, 60 * time.Second},
		{"stale version", 500, nil, envelope(2129, "Aloe.SystemFrameworks.Domain.OptimisticLockException", "ObjectVersion mismatch"), erpclient.ErrConflict, erpclient.ErrUnavailable, 0},
		{"released document", 500, nil, envelope(2029, "BusinessRuleException", "The document is released and is read-only"), erpclient.ErrConflict, nil, 0},
		{"business rule", 500, nil, envelope(2029, "BusinessRuleException", "Rule R17342 failed"), nil, erpclient.ErrUnavailable, 0},
		{"crash page", 500, nil, "<html>oops</html>", erpclient.ErrUnavailable, erpclient.ErrConflict, 0},
		// an outage inside ERP.net (retried for reads); once retries run out it must read as unavailable
		{"database timeout", 500, nil, envelope(0, "System.Data.SqlClient.SqlException", "Timeout expired"), erpclient.ErrUnavailable, erpclient.ErrConflict, 0},
		{"bad gateway", 502, nil, "", erpclient.ErrUnavailable, nil, 0},
		{"conflict", 409, nil, envelope(0, "Conflict", "changed"), erpclient.ErrConflict, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.answer = func(method, _, _ string, _ []byte) (int, http.Header, string) { return tt.status, tt.header, tt.body }
			c := f.client(t, nil)
			// writes are never retried, so one request shows the raw mapping
			err := c.Patch(context.Background(), erpclient.SetSalesOrders, orderID, nil, erpclient.Prop{Name: "DocumentNotes", Value: "x"})
			var e *erpclient.Error
			if !errors.As(err, &e) || e.Status != tt.status {
				t.Fatalf("err %v, want *Error with status %d", err, tt.status)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("%v is not %v", err, tt.want)
			}
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Errorf("%v is %v", err, tt.notWant)
			}
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			if strings.Contains(err.Error(), "stack trace") || strings.Contains(err.Error(), "token-") || strings.Contains(err.Error(), f.srv.URL) {
				t.Errorf("error leaks upstream details: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "erpclient: ") {
				t.Errorf("error not prefixed: %v", err)
			}
		})
	}
}

func TestErrors_Malformed(t *testing.T) {
	f := newFake(t)
	f.answer = func(string, string, string, []byte) (int, http.Header, string) { return 200, nil, `{"value":[{"Id":` }
	c := f.client(t, nil)
	_, err := erpclient.List[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts})
	if !errors.Is(err, erpclient.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
}

func TestGet_NotFoundAndInvalid(t *testing.T) {
	f := newFake(t)
	f.answer = func(string, string, string, []byte) (int, http.Header, string) { return 200, nil, `{"value":[]}` }
	c := f.client(t, nil)
	_, err := erpclient.Get[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts}, orderID)
	if !errors.Is(err, erpclient.ErrNotFound) {
		t.Errorf("err %v, want ErrNotFound", err)
	}
	_, err = erpclient.Get[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts}, "not-a-guid")
	if !errors.Is(err, erpclient.ErrInvalidQuery) {
		t.Errorf("err %v, want ErrInvalidQuery", err)
	}
	_, err = erpclient.Get[erpclient.SalesOrder](context.Background(), c, erpclient.Query{Set: erpclient.SetSalesOrders}, orderID)
	if !errors.Is(err, erpclient.ErrScopeRequired) {
		t.Errorf("err %v, want ErrScopeRequired", err)
	}
	if n := len(f.log()); n != 1 {
		t.Errorf("%d upstream requests, want 1 (refused queries send nothing)", n)
	}
}

func TestConfig_Validate(t *testing.T) {
	err := erpclient.Config{
		InstanceURL: "http://erp.example.com", ClientSecret: "",
		Scopes: []string{"read update"}, Scheduler: erpclient.SchedulerConfig{MaxInFlight: -1},
	}.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"plain http", "client id", "client secret", `scope "read update"`, "max in flight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	ok := erpclient.Config{InstanceURL: "http://127.0.0.1:8089", ClientID: "a", ClientSecret: "b"}
	if err := ok.Validate(); err != nil {
		t.Errorf("loopback http refused: %v", err)
	}
	ok = erpclient.Config{IdentityURL: "http://erp.internal/id", ODataURL: "http://erp.internal/api/domain/odata/", ClientID: "a", ClientSecret: "b", AllowInsecure: true}
	if err := ok.Validate(); err != nil {
		t.Errorf("AllowInsecure refused: %v", err)
	}
	if err := (erpclient.Config{IdentityURL: "https://x/id", ClientID: "a", ClientSecret: "b"}).Validate(); err == nil || !strings.Contains(err.Error(), "OData URL is missing") {
		t.Errorf("half explicit config: %v", err)
	}
}

func TestNew_Discovery(t *testing.T) {
	f := newFake(t)
	var audit bytes.Buffer
	c := f.client(t, func(cfg *erpclient.Config) {
		cfg.Audit = slog.New(slog.NewJSONHandler(&audit, nil))
	})
	if c.IdentityURL() != f.srv.URL+"/id" || c.ODataURL() != f.srv.URL+"/odata/" {
		t.Errorf("discovered %s %s", c.IdentityURL(), c.ODataURL())
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.tokenCount() != 1 {
		t.Errorf("token exchanges %d", f.tokenCount())
	}
	log := audit.String()
	if !strings.Contains(log, `"outcome":"ok"`) || !strings.Contains(log, `"client_id":"com.test/app"`) || !strings.Contains(log, `"fingerprint"`) || !strings.Contains(log, `"granted_scopes":"read"`) {
		t.Errorf("audit entry incomplete: %s", log)
	}
	if strings.Contains(log, "token-1") || strings.Contains(log, "s3cret") {
		t.Errorf("audit log leaks a secret: %s", log)
	}
}

func TestNew_BadCredentials(t *testing.T) {
	f := newFake(t)
	var audit bytes.Buffer
	c := f.client(t, func(cfg *erpclient.Config) {
		cfg.ClientSecret = "wrong"
		cfg.Audit = slog.New(slog.NewJSONHandler(&audit, nil))
	})
	err := c.Ping(context.Background())
	if !errors.Is(err, erpclient.ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err %v, want ErrUnauthorized without the secret", err)
	}
	if !strings.Contains(audit.String(), `"outcome":"failed"`) || strings.Contains(audit.String(), "wrong") {
		t.Errorf("audit: %s", audit.String())
	}
}

func TestNew_RefusesInsecureDiscoveredURL(t *testing.T) {
	f := newFake(t)
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"WebSites": []map[string]any{
			{"Type": "ID", "Url": "http://erp.example.com/id"},
			{"Type": "DomainAPI", "Url": "http://erp.example.com/api", "AdditionalProperties": map[string]string{"ODataServiceRoot": "http://erp.example.com/api/domain/odata/"}},
		}})
	})
	_, err := erpclient.New(context.Background(), f.config())
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("err %v", err)
	}
}

// --- scheduler ---

func productQuery(n int) erpclient.Query {
	return erpclient.Query{Set: erpclient.SetProducts, Filter: erpclient.Eq("PartNumber", erpclient.String(fmt.Sprint(n)))}
}

// runConcurrently starts n calls of fn and returns a func that waits for them and gives their errors.
func runConcurrently(n int, fn func(i int) error) func() []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	return func() []error { wg.Wait(); return errs }
}

// heldFake starts a fake and a client with a token, then one read that the
// fake holds in flight until release: callers made meanwhile queue up.
func heldFake(t *testing.T, mod func(*erpclient.Config)) (f *fakeERP, c *erpclient.Client, release func(), first func() []error) {
	t.Helper()
	f = newFake(t)
	c = f.client(t, mod)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil { // the token is fetched, so counts below are only OData
		t.Fatal(err)
	}
	release = f.hold()
	first = runConcurrently(1, func(int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(-1)); return err })
	waitFor(t, "the first read in flight", func() bool { return c.Stats().InFlight == 1 })
	return f, c, release, first
}

func TestScheduler_DistinctReadsShareOneBatch(t *testing.T) {
	f, c, release, first := heldFake(t, nil)
	ctx := context.Background()
	const n = 15
	wait := runConcurrently(n, func(i int) error {
		p, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i))
		if err == nil && (len(p.Items) != 1 || p.Items[0].PartNumber != fmt.Sprintf("PartNumber eq '%d'", i)) {
			err = fmt.Errorf("call %d got another call's answer: %+v", i, p.Items)
		}
		return err
	})
	waitFor(t, "all reads queued", func() bool { return c.Stats().Queued == n })
	release()
	noErrors(t, first(), wait())
	log := f.log()
	if len(log) != 3 || log[2] != fmt.Sprintf("POST /odata/$batch [%d parts]", n) {
		t.Errorf("upstream requests: %q", log)
	}
	if s := c.Stats(); s.Batches != 1 || s.BatchParts != n {
		t.Errorf("stats: %+v", s)
	}
	// the ping, the held read and the n queued reads were each dispatched once,
	// and the queued reads waited at least until the release
	if w := c.Stats().QueueWait; w.Count != n+2 || w.Sum <= 0 {
		t.Errorf("queue wait: %+v, want %d waits", w, n+2)
	}
}

func TestScheduler_IdenticalReadsShareOneGET(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	release := f.hold()
	const n = 30
	wait := runConcurrently(n, func(i int) error {
		_, err := erpclient.List[erpclient.Product](ctx, c, productQuery(7))
		return err
	})
	waitFor(t, "all calls attached", func() bool { return c.Stats().Coalesced == n-1 })
	release()
	for _, err := range wait() {
		if err != nil {
			t.Error(err)
		}
	}
	if log := f.log(); len(log) != 2 || !strings.HasPrefix(log[1], "GET /odata/General_Products_Products?") {
		t.Errorf("upstream requests: %q", log)
	}
}

func TestScheduler_MaxBatchParts(t *testing.T) {
	f, c, release, first := heldFake(t, func(cfg *erpclient.Config) { cfg.Scheduler.MaxBatchParts = 4 })
	ctx := context.Background()
	wait := runConcurrently(10, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
	waitFor(t, "all reads queued", func() bool { return c.Stats().Queued == 10 })
	release()
	noErrors(t, first(), wait())
	log := f.log()
	want := []string{"POST /odata/$batch [4 parts]", "POST /odata/$batch [4 parts]", "POST /odata/$batch [2 parts]"}
	if len(log) != 5 {
		t.Fatalf("upstream requests: %q", log)
	}
	for i, w := range want {
		if !strings.HasPrefix(log[2+i], w) {
			t.Errorf("request %d = %q, want %s…", 2+i, log[2+i], w)
		}
	}
}

func TestScheduler_CancelledCallerLeaves(t *testing.T) {
	f, c, release, first := heldFake(t, nil)
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	cancelled := runConcurrently(1, func(int) error { _, err := erpclient.List[erpclient.Product](cctx, c, productQuery(99)); return err })
	stay := runConcurrently(3, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
	waitFor(t, "reads queued", func() bool { return c.Stats().Queued == 4 })
	cancel()
	if err := cancelled()[0]; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	release()
	noErrors(t, first(), stay())
	log := f.log()
	if len(log) != 3 || log[2] != "POST /odata/$batch [3 parts]" {
		t.Errorf("upstream requests: %q", log)
	}
	for _, p := range f.parts {
		for _, line := range p {
			if strings.Contains(line, "'99'") {
				t.Errorf("cancelled call's part was sent: %s", line)
			}
		}
	}
}

func TestScheduler_QueueBounds(t *testing.T) {
	t.Run("a full queue refuses at once", func(t *testing.T) {
		_, c, release, first := heldFake(t, func(cfg *erpclient.Config) { cfg.Scheduler.MaxQueue = 2 })
		ctx := context.Background()
		queued := runConcurrently(2, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
		waitFor(t, "two queued", func() bool { return c.Stats().Queued == 2 })
		_, err := erpclient.List[erpclient.Product](ctx, c, productQuery(3))
		if !errors.Is(err, erpclient.ErrBusy) {
			t.Errorf("third call: %v, want ErrBusy (queue full)", err)
		}
		release()
		noErrors(t, first(), queued())
		if s := c.Stats(); s.QueueFull != 1 || s.Retries != 0 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("a call waits at most MaxWait", func(t *testing.T) {
		_, c, release, first := heldFake(t, func(cfg *erpclient.Config) { cfg.Scheduler.MaxWait = 50 * time.Millisecond })
		_, err := erpclient.List[erpclient.Product](context.Background(), c, productQuery(1))
		if !errors.Is(err, erpclient.ErrBusy) {
			t.Errorf("queued call: %v, want ErrBusy (waited too long)", err)
		}
		release()
		noErrors(t, first()) // the call in flight is not bounded by MaxWait
		if s := c.Stats(); s.QueueFull != 1 || s.Retries != 0 || s.Queued != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestScheduler_RetryAfterPausesAndRetries(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	busy, retryAfter := 1, "1"
	f.answer = func(m, p, q string, b []byte) (int, http.Header, string) {
		mu.Lock()
		defer mu.Unlock()
		if busy > 0 {
			busy--
			return 429, http.Header{"Retry-After": {retryAfter}}, `{"error":{"message":"Too many requests","code":0}}`
		}
		return f.defaultAnswer(m, p, q, b)
	}
	c := f.client(t, nil)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(1)); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("retried before Retry-After")
	}
	if s := c.Stats(); s.Status429 != 1 || s.Retries != 1 || s.UpstreamRequests != 2 {
		t.Errorf("stats %+v", s)
	}
	// a caller whose deadline ends before Retry-After gets ErrBusy at once
	mu.Lock()
	busy, retryAfter = 1, "30"
	mu.Unlock()
	short, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	_, err := erpclient.List[erpclient.Product](short, c, productQuery(2))
	var e *erpclient.Error
	if !errors.As(err, &e) || !errors.Is(err, erpclient.ErrBusy) || e.RetryAfter != 30*time.Second || short.Err() != nil {
		t.Errorf("err %v, want ErrBusy with Retry-After before the deadline", err)
	}
	// and while the pause lasts, such callers are told at once
	if _, err := erpclient.List[erpclient.Product](short, c, productQuery(3)); !errors.Is(err, erpclient.ErrBusy) || short.Err() != nil {
		t.Errorf("during the pause: %v", err)
	}
}

func TestScheduler_WritesAreNotRetried(t *testing.T) {
	f := newFake(t)
	f.answer = func(string, string, string, []byte) (int, http.Header, string) { return 503, nil, "" }
	c := f.client(t, nil)
	err := c.ChangeState(context.Background(), erpclient.SetSalesOrders, orderID, erpclient.StateReleased)
	if !errors.Is(err, erpclient.ErrBusy) {
		t.Errorf("err %v", err)
	}
	if log := f.log(); len(log) != 1 || log[0] != "POST /odata/Crm_Sales_SalesOrders("+orderID+")/ChangeState?" {
		t.Errorf("upstream requests: %q", log)
	}
}

// --- token ---

func TestToken_OneExchangeForConcurrentCalls(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := f.client(t, func(cfg *erpclient.Config) { cfg.Clock = clock })
	ctx := context.Background()
	wait := runConcurrently(20, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokenCount(); n != 1 {
		t.Errorf("%d token exchanges for 20 concurrent calls, want 1", n)
	}
	// an hour later the token is near expiry: one new exchange for all
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	wait = runConcurrently(20, func(i int) error {
		_, err := erpclient.List[erpclient.Product](ctx, c, productQuery(100+i))
		return err
	})
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	// the token is still valid, so the calls go on with it while the new one is fetched in the background
	waitFor(t, "the refresh", func() bool { return f.tokenCount() >= 2 })
	if n := f.tokenCount(); n != 2 {
		t.Errorf("%d token exchanges after expiry, want 2", n)
	}
}

func TestToken_RefusedTokenIsReplacedOnce(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.refuse["token-1"] = 1000 // revoked
	f.mu.Unlock()
	release := f.hold()
	first := runConcurrently(1, func(int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(-1)); return err })
	waitFor(t, "the first read in flight", func() bool { return c.Stats().InFlight == 1 })
	wait := runConcurrently(10, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
	waitFor(t, "reads queued", func() bool { return c.Stats().Queued == 10 })
	release()
	noErrors(t, first(), wait())
	if n := f.tokenCount(); n != 2 {
		t.Errorf("%d token exchanges, want 2 (one replacement)", n)
	}
	// a token the API keeps refusing is not retried forever
	f.mu.Lock()
	f.refuse["token-2"], f.refuse["token-3"] = 1000, 1000
	f.mu.Unlock()
	_, err := erpclient.List[erpclient.Product](ctx, c, productQuery(500))
	if !errors.Is(err, erpclient.ErrUnauthorized) {
		t.Errorf("err %v, want ErrUnauthorized", err)
	}
}

func TestByIDs_ChunksKeepURLsShort(t *testing.T) {
	f, c, release, first := heldFake(t, nil)
	ids := make([]string, 230)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	ids = append(ids, strings.ToUpper(ids[0])) // the same id twice is asked once
	done := runConcurrently(1, func(int) error {
		_, err := erpclient.ByIDs[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts, Select: []string{"PartNumber"}}, ids)
		return err
	})
	waitFor(t, "chunks queued", func() bool { return c.Stats().Queued >= 5 })
	release()
	noErrors(t, first(), done())
	// every chunk, sent in a $batch part or as a plain GET after the held one
	var targets []string
	for _, l := range f.log()[2:] {
		if strings.HasPrefix(l, "GET ") {
			targets = append(targets, strings.TrimPrefix(l, "GET "))
		}
	}
	f.mu.Lock()
	for _, p := range f.parts {
		for _, line := range p {
			targets = append(targets, strings.TrimSuffix(strings.SplitN(line, " ", 2)[1], " HTTP/1.1"))
		}
	}
	f.mu.Unlock()
	if len(targets) < 5 || len(f.log()) != 3 {
		t.Errorf("%d chunks in %d requests: want every chunk in one $batch", len(targets), len(f.log())-2)
	}
	asked := map[string]int{}
	for _, target := range targets {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.RawQuery) > 2000 {
			t.Errorf("chunk URL query of %d bytes", len(u.RawQuery))
		}
		filter := u.Query().Get("$filter")
		inner := strings.TrimSuffix(strings.TrimPrefix(filter, "Id in ("), ")")
		for _, id := range strings.Split(inner, ",") {
			asked[id]++
		}
	}
	if len(asked) != 230 {
		t.Errorf("%d distinct ids asked, want 230", len(asked))
	}
	for id, n := range asked {
		if n != 1 {
			t.Errorf("id %s asked %d times", id, n)
		}
	}
	if _, err := erpclient.ByIDs[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts}, []string{"x"}); !errors.Is(err, erpclient.ErrInvalidQuery) {
		t.Errorf("bad id: %v", err)
	}
}

func TestScheduler_WritesGoAlone(t *testing.T) {
	f, c, release, first := heldFake(t, nil)
	ctx := context.Background()
	reads := runConcurrently(3, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
	write := runConcurrently(1, func(int) error {
		return c.ChangeState(ctx, erpclient.SetSalesOrders, orderID, erpclient.StateReleased)
	})
	waitFor(t, "calls queued", func() bool { return c.Stats().Queued == 4 })
	release()
	noErrors(t, first(), reads(), write())
	log := f.log()
	var batches, writes int
	for _, l := range log[2:] {
		switch {
		case strings.HasPrefix(l, "POST /odata/$batch [3 parts]"):
			batches++
		case strings.HasPrefix(l, "POST /odata/Crm_Sales_SalesOrders("):
			writes++
		}
	}
	if len(log) != 4 || batches != 1 || writes != 1 {
		t.Errorf("upstream requests: %q", log)
	}
}

func TestClient_Close(t *testing.T) {
	_, c, _, first := heldFake(t, nil)
	ctx := context.Background()
	queued := runConcurrently(2, func(i int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(i)); return err })
	waitFor(t, "calls queued", func() bool { return c.Stats().Queued == 2 })
	c.Close()
	for _, err := range queued() {
		if !errors.Is(err, erpclient.ErrClosed) {
			t.Errorf("queued call after Close: %v", err)
		}
	}
	if err := first()[0]; err == nil {
		t.Error("the request in flight survived Close")
	}
	if _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(9)); !errors.Is(err, erpclient.ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
}

// TestScheduler_LastCallerLeavingCancelsTheRequest: when every caller of a
// request in flight has gone, the request is cancelled (and the slot freed
// for the others) instead of waiting for an answer nobody reads.
func TestScheduler_LastCallerLeavingCancelsTheRequest(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.hold()
	ctx, cancel := context.WithCancel(context.Background())
	shared := runConcurrently(2, func(int) error { _, err := erpclient.List[erpclient.Product](ctx, c, productQuery(1)); return err })
	waitFor(t, "the read at the upstream, shared", func() bool { return len(f.log()) == 2 && c.Stats().Coalesced == 1 })
	cancel()
	for _, err := range shared() {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller: %v", err)
		}
	}
	waitFor(t, "the upstream request aborted", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.aborted == 1 })
	// the slot is free again: the next read goes out and succeeds
	if _, err := erpclient.List[erpclient.Product](context.Background(), c, productQuery(2)); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.InFlight != 0 || s.TransportErrors != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestScheduler_Churn: many callers with random queries (some identical),
// random cancellations and an upstream of random speed. Every call either
// gets the answer to its own query or its own context error, and the
// scheduler ends empty: nothing leaks, nothing deadlocks.
func TestScheduler_Churn(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	inner := f.answer
	f.answer = func(m, p, q string, b []byte) (int, http.Header, string) {
		mu.Lock()
		d := time.Duration(rng.IntN(3)) * time.Millisecond
		mu.Unlock()
		time.Sleep(d) // upstream latency, not a wait for a condition
		return inner(m, p, q, b)
	}
	c := f.client(t, func(cfg *erpclient.Config) {
		cfg.Scheduler.MaxInFlight = 2
		cfg.Scheduler.MaxBatchParts = 7
		cfg.Scheduler.RequestsPerMinute = 60000
	})
	const callers = 60
	wait := runConcurrently(callers, func(i int) error {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for j := range 15 {
			ctx, cancel := context.WithCancel(context.Background())
			if r.IntN(4) == 0 {
				time.AfterFunc(time.Duration(r.IntN(2000))*time.Microsecond, cancel)
			}
			n := r.IntN(25)
			p, err := erpclient.List[erpclient.Product](ctx, c, productQuery(n))
			cancelled := ctx.Err() != nil
			cancel()
			switch {
			case err == nil:
				if len(p.Items) != 1 || p.Items[0].PartNumber != fmt.Sprintf("PartNumber eq '%d'", n) {
					return fmt.Errorf("caller %d call %d got another answer: %+v", i, j, p.Items)
				}
			case errors.Is(err, context.Canceled) && cancelled:
			default:
				return fmt.Errorf("caller %d call %d: %w", i, j, err)
			}
		}
		return nil
	})
	noErrors(t, wait())
	waitFor(t, "the scheduler idle", func() bool { s := c.Stats(); return s.Queued == 0 && s.InFlight == 0 })
	if s := c.Stats(); s.UpstreamRequests >= s.Calls {
		t.Errorf("no sharing: %+v", s)
	}
}
