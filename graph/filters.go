package graph

import (
	"context"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/graph/model"
)

// Filters map typed arguments to the conditions ERP.net can evaluate (eq, ge, le, in, contains, startswith; no
// or, ne, gt, lt). Everything is validated here; a condition that cannot be expressed is refused with
// BAD_USER_INPUT instead of being dropped. Literals are escaped by erpclient alone.

// maxFilterText bounds text conditions; maxFilterIDs bounds ID lists.
const (
	maxFilterText = 100
	maxFilterIDs  = 100
)

// conditions collects the conditions of one filter argument.
type conditions struct {
	fs []erpclient.Filter
}

func (c *conditions) add(f erpclient.Filter) { c.fs = append(c.fs, f) }

func (c *conditions) filter() erpclient.Filter {
	switch len(c.fs) {
	case 0:
		return nil
	case 1:
		return c.fs[0]
	}
	return erpclient.And(c.fs...)
}

// text validates a text condition of field: not empty, not too long, valid UTF-8 without control characters.
func text(field, s string) error {
	switch {
	case s == "":
		return inputErrorf("%s: the text must not be empty", field)
	case utf8.RuneCountInString(s) > maxFilterText:
		return inputErrorf("%s: the text must be at most %d characters", field, maxFilterText)
	case !utf8.ValidString(s):
		return inputErrorf("%s: the text is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return inputErrorf("%s: the text must not contain control characters", field)
		}
	}
	return nil
}

func (c *conditions) documentNo(field, prop string, f *model.DocumentNoFilter) error {
	if f == nil {
		return nil
	}
	if f.Eq == nil && f.StartsWith == nil {
		return inputErrorf("%s: give eq or startsWith", field)
	}
	return c.textFilter(field, prop, &model.TextFilter{Eq: f.Eq, StartsWith: f.StartsWith})
}

func (c *conditions) textFilter(field, prop string, f *model.TextFilter) error {
	if f == nil {
		return nil
	}
	if f.Eq == nil && f.StartsWith == nil && f.Contains == nil {
		return inputErrorf("%s: give eq, startsWith or contains", field)
	}
	if f.Eq != nil {
		if err := text(field+".eq", *f.Eq); err != nil {
			return err
		}
		c.add(erpclient.Eq(prop, erpclient.String(*f.Eq)))
	}
	if f.StartsWith != nil {
		if err := text(field+".startsWith", *f.StartsWith); err != nil {
			return err
		}
		c.add(erpclient.StartsWith(prop, *f.StartsWith))
	}
	if f.Contains != nil {
		if err := text(field+".contains", *f.Contains); err != nil {
			return err
		}
		c.add(erpclient.Contains(prop, *f.Contains))
	}
	return nil
}

// earliestDate and latestDate bound date conditions to what ERP.net stores.
var (
	earliestDate = time.Date(1753, 1, 1, 0, 0, 0, 0, time.UTC)
	latestDate   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

func (c *conditions) dateRange(field, prop string, r *model.DateRange) error {
	if r == nil {
		return nil
	}
	if r.Ge == nil && r.Le == nil {
		return inputErrorf("%s: give ge or le", field)
	}
	for _, d := range []*time.Time{r.Ge, r.Le} {
		if d != nil && (d.Before(earliestDate) || d.After(latestDate)) {
			return inputErrorf("%s: dates must be between 1753-01-01 and 9999-12-31", field)
		}
	}
	if r.Ge != nil && r.Le != nil && r.Ge.After(*r.Le) {
		return inputErrorf("%s: ge must not be after le", field)
	}
	if r.Ge != nil {
		c.add(erpclient.Ge(prop, erpclient.Date(*r.Ge)))
	}
	if r.Le != nil {
		c.add(erpclient.Le(prop, erpclient.Date(*r.Le)))
	}
	return nil
}

func (c *conditions) states(field string, states []model.DocumentState) error {
	if states == nil {
		return nil
	}
	if len(states) == 0 {
		return inputErrorf("%s: give at least one state", field)
	}
	seen := map[model.DocumentState]bool{}
	var vs []erpclient.Value
	for _, s := range states {
		if !seen[s] {
			seen[s] = true
			vs = append(vs, erpState(s).Value())
		}
	}
	c.add(erpclient.In("State", vs...))
	return nil
}

func (c *conditions) boolean(prop string, b *bool) {
	if b != nil {
		c.add(erpclient.Eq(prop, erpclient.Bool(*b)))
	}
}

// ids decodes a list of global IDs of GraphQL type typ into GUIDs; nil when the list is absent.
func ids(field, typ string, in []string) ([]string, error) {
	if in == nil {
		return nil, nil
	}
	if len(in) == 0 {
		return nil, inputErrorf("%s: give at least one ID", field)
	}
	if len(in) > maxFilterIDs {
		return nil, inputErrorf("%s: at most %d IDs", field, maxFilterIDs)
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, id := range in {
		guid, err := model.DecodeIDOf(typ, id)
		if err != nil {
			return nil, inputErrorf("%s: %q is not a %s ID", field, truncate(id, 60), typ)
		}
		if !seen[guid] {
			seen[guid] = true
			out = append(out, guid)
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func refValues(set string, guids []string) []erpclient.Value {
	vs := make([]erpclient.Value, len(guids))
	for i, g := range guids {
		vs[i] = erpclient.RefTo(set, g)
	}
	return vs
}

// customerParties returns the party references of the customers (GUIDs) the user may see, for filters on
// documents that name only their ToParty. Customers that do not exist or are not visible are left out.
func customerParties(ctx context.Context, guids []string) ([]erpclient.Value, error) {
	var out []erpclient.Value
	for _, thunk := range loader.Start(ctx, loader.For(ctx).CustomerByID, guids) {
		c, err := thunk()
		if errors.Is(err, loader.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c.Party != nil {
			out = append(out, c.Party.Value())
		}
	}
	return out, nil
}

// documentOrder maps a DocumentOrder to $orderby, with Id last so that offset pages are stable.
func documentOrder(o *model.DocumentOrder) []erpclient.OrderBy {
	if o == nil {
		return nil
	}
	prop := map[model.DocumentOrderField]string{
		model.DocumentOrderFieldDocumentDate: "DocumentDate",
		model.DocumentOrderFieldDocumentNo:   "DocumentNo",
		model.DocumentOrderFieldCreationTime: "CreationTime",
	}[o.Field]
	return []erpclient.OrderBy{{Prop: prop, Desc: o.Direction == model.OrderDirectionDesc}, {Prop: "Id"}}
}

// documentFilter holds the conditions every document filter has.
type documentFilter struct {
	documentNo   *model.DocumentNoFilter
	documentDate *model.DateRange
	state        []model.DocumentState
	void         *bool
}

func (c *conditions) document(f documentFilter) error {
	if err := c.documentNo("filter.documentNo", "DocumentNo", f.documentNo); err != nil {
		return err
	}
	if err := c.dateRange("filter.documentDate", "DocumentDate", f.documentDate); err != nil {
		return err
	}
	if err := c.states("filter.state", f.state); err != nil {
		return err
	}
	c.boolean("Void", f.void)
	return nil
}

// customers adds `Customer in (...)` for customerIds.
func (c *conditions) customers(customerIDs []string) error {
	customers, err := ids("filter.customerIds", "Customer", customerIDs)
	if err != nil || customers == nil {
		return err
	}
	c.add(erpclient.In("Customer", refValues(erpclient.SetCustomers, customers)...))
	return nil
}

// salesOrderQuery validates f and o into a list query on sales orders.
func salesOrderQuery(f *model.SalesOrderFilter, o *model.DocumentOrder) (listQuery, error) {
	q := listQuery{set: erpclient.SetSalesOrders, orderBy: documentOrder(o)}
	if f == nil {
		return q, nil
	}
	var c conditions
	if err := c.document(documentFilter{f.DocumentNo, f.DocumentDate, f.State, f.Void}); err != nil {
		return q, err
	}
	if err := c.documentNo("filter.customerPurchaseOrderNo", "CustomerPurchaseOrderNo", f.CustomerPurchaseOrderNo); err != nil {
		return q, err
	}
	if err := c.customers(f.CustomerIds); err != nil {
		return q, err
	}
	q.filter = c.filter()
	return q, nil
}

// invoiceQuery validates f and o into a list query on invoices.
func invoiceQuery(f *model.InvoiceFilter, o *model.DocumentOrder) (listQuery, error) {
	q := listQuery{set: erpclient.SetInvoices, orderBy: documentOrder(o)}
	if f == nil {
		return q, nil
	}
	var c conditions
	if err := c.document(documentFilter{f.DocumentNo, f.DocumentDate, f.State, f.Void}); err != nil {
		return q, err
	}
	if err := c.dateRange("filter.paymentDueDate", "PaymentDueDate", f.PaymentDueDate); err != nil {
		return q, err
	}
	if err := c.customers(f.CustomerIds); err != nil {
		return q, err
	}
	q.filter = c.filter()
	return q, nil
}

// shipmentQuery validates f and o into a list query on shipments. Shipments name only their recipient party, so
// customerIds become the parties of those customers (customers the user may not see match nothing).
func shipmentQuery(ctx context.Context, f *model.ShipmentFilter, o *model.DocumentOrder) (listQuery, error) {
	q := listQuery{set: erpclient.SetShipments, orderBy: documentOrder(o)}
	if f == nil {
		return q, nil
	}
	var c conditions
	if err := c.document(documentFilter{f.DocumentNo, f.DocumentDate, f.State, f.Void}); err != nil {
		return q, err
	}
	customers, err := ids("filter.customerIds", "Customer", f.CustomerIds)
	if err != nil {
		return q, err
	}
	if customers != nil {
		parties, err := customerParties(ctx, customers)
		if err != nil {
			return q, err
		}
		if len(parties) == 0 {
			q.empty = true
		} else {
			c.add(erpclient.In("ToParty", parties...))
		}
	}
	q.filter = c.filter()
	return q, nil
}

// customerQuery validates f into a list query on customers, ordered by number.
func customerQuery(f *model.CustomerFilter) (listQuery, error) {
	q := listQuery{set: erpclient.SetCustomers, orderBy: []erpclient.OrderBy{{Prop: "Number"}, {Prop: "Id"}}}
	if f == nil {
		return q, nil
	}
	var c conditions
	if err := c.textFilter("filter.number", "Number", f.Number); err != nil {
		return q, err
	}
	customers, err := ids("filter.ids", "Customer", f.Ids)
	if err != nil {
		return q, err
	}
	if customers != nil {
		vs := make([]erpclient.Value, len(customers))
		for i, g := range customers {
			vs[i] = erpclient.GUID(g)
		}
		c.add(erpclient.In("Id", vs...))
	}
	q.filter = c.filter()
	return q, nil
}

// productQuery validates f and o into a list query on products.
func productQuery(f *model.ProductFilter, o *model.ProductOrder) (listQuery, error) {
	q := listQuery{set: erpclient.SetProducts}
	if o != nil {
		q.orderBy = []erpclient.OrderBy{{Prop: "PartNumber", Desc: o.Direction == model.OrderDirectionDesc}, {Prop: "Id"}}
	}
	if f == nil {
		return q, nil
	}
	var c conditions
	if err := c.textFilter("filter.partNumber", "PartNumber", f.PartNumber); err != nil {
		return q, err
	}
	if f.NameContains != nil {
		if err := text("filter.nameContains", *f.NameContains); err != nil {
			return q, err
		}
		c.add(erpclient.Contains("Name", *f.NameContains))
	}
	c.boolean("Active", f.Active)
	q.filter = c.filter()
	return q, nil
}
