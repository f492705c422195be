package graph

import (
	"context"
	"errors"
	"sync"

	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/99designs/gqlgen/graphql"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/graph/model"
)

// load reads id through ld and converts it with f; an empty id is null.
func load[T, M any](ctx context.Context, ld *dataloader.Loader[string, *T], id string, f func(*T) *M) (*M, error) {
	if id == "" {
		return nil, nil
	}
	v, err := ld.Load(ctx, id)()
	if err != nil {
		return nil, err
	}
	return f(v), nil
}

// loadOpt is load for nullable relations whose target the user may legitimately not see (a ship-to customer
// outside their grants, the order of an invoice line for a role without orders): NOT_FOUND becomes null.
func loadOpt[T, M any](ctx context.Context, ld *dataloader.Loader[string, *T], id string, f func(*T) *M) (*M, error) {
	m, err := load(ctx, ld, id, f)
	if errors.Is(err, loader.ErrNotFound) {
		return nil, nil
	}
	return m, err
}

// loadList reads the list under key through ld and converts it with f.
func loadList[T, M any](ctx context.Context, ld *dataloader.Loader[string, []*T], key string, f func(*T) *M) ([]*M, error) {
	v, err := ld.Load(ctx, key)()
	if err != nil {
		return nil, err
	}
	return convertAll(v, f), nil
}

// scope is the signed-in user's access scope.
func scope(ctx context.Context) (*access.Scope, error) {
	return requestFrom(ctx).Scope(ctx)
}

// pricesFor reports whether the user may see prices of customerID's documents.
func pricesFor(ctx context.Context, customerID string) (bool, error) {
	s, err := scope(ctx)
	if err != nil {
		return false, err
	}
	return s.Allows(customerID, access.ViewPrices), nil
}

// orderLines are order's lines, their prices hidden unless the user may see the order's prices.
func orderLines(ctx context.Context, order *model.SalesOrder) ([]*model.SalesOrderLine, error) {
	lines, err := loadList(ctx, loader.For(ctx).SalesOrderLinesByOrder, order.GUID, toSalesOrderLine)
	if err != nil {
		return nil, err
	}
	ok, err := pricesFor(ctx, order.CustomerID)
	if err != nil {
		return nil, err
	}
	if !ok {
		hidePrices(lines...)
	}
	return lines, nil
}

// resolveNode fetches any entity by global ID. Entities outside the user's access answer NOT_FOUND like missing
// ones; lines are visible only together with their document.
func resolveNode(ctx context.Context, id string) (model.Node, error) {
	typ, guid, err := model.DecodeID(id)
	if err != nil {
		return nil, inputErrorf("id: %q is not an ID issued by this API", truncate(id, 60))
	}
	l := loader.For(ctx)
	switch typ {
	case "SalesOrder":
		return node(load(ctx, l.SalesOrderByID, guid, toSalesOrder))
	case "Invoice":
		return node(load(ctx, l.InvoiceByID, guid, toInvoice))
	case "Shipment":
		return node(load(ctx, l.ShipmentByID, guid, toShipment))
	case "Customer":
		return node(load(ctx, l.CustomerByID, guid, toCustomer))
	case "Party":
		return node(load(ctx, l.PartyByID, guid, toParty))
	case "SalesOrderLine":
		return orderLineNode(ctx, guid)
	case "InvoiceLine":
		line, err := load(ctx, l.InvoiceLineByID, guid, toInvoiceLine)
		return lineNode(ctx, line, err, l.InvoiceByID, func() string { return line.InvoiceID })
	case "ShipmentLine":
		line, err := load(ctx, l.ShipmentLineByID, guid, toShipmentLine)
		return lineNode(ctx, line, err, l.ShipmentByID, func() string { return line.ShipmentID })
	case "Product":
		return node(load(ctx, l.ProductByID, guid, toProduct))
	case "ProductGroup":
		return node(load(ctx, l.ProductGroupByID, guid, toProductGroup))
	case "MeasurementUnit":
		return node(load(ctx, l.MeasurementUnitByID, guid, toMeasurementUnit))
	case "Currency":
		return node(load(ctx, l.CurrencyByID, guid, toCurrency))
	case "Store":
		return node(load(ctx, l.StoreByID, guid, toStore))
	}
	return nil, loader.ErrNotFound
}

// node adapts a typed load to the Node interface, keeping a nil model a nil interface.
func node[M any, P interface {
	*M
	model.Node
}](m *M, err error) (model.Node, error) {
	if err != nil || m == nil {
		return nil, err
	}
	return P(m), nil
}

// lineNode returns a line only if its document is visible too: lines carry no customer of their own.
func lineNode[L any, P interface {
	*L
	model.Node
}, D any](ctx context.Context, line *L, err error, docs *dataloader.Loader[string, *D], doc func() string) (model.Node, error) {
	if err != nil {
		return nil, err
	}
	if _, err := docs.Load(ctx, doc())(); err != nil {
		return nil, err
	}
	return P(line), nil
}

// orderLineNode is a sales order line by GUID: visible only together with its order, its prices only with the
// order's.
func orderLineNode(ctx context.Context, guid string) (model.Node, error) {
	l := loader.For(ctx)
	line, err := load(ctx, l.SalesOrderLineByID, guid, toSalesOrderLine)
	if err != nil {
		return nil, err
	}
	order, err := l.SalesOrderByID.Load(ctx, line.SalesOrderID)()
	if err != nil {
		return nil, err
	}
	ok, err := pricesFor(ctx, refID(order.Customer))
	if err != nil {
		return nil, err
	}
	if !ok {
		hidePrices(line)
	}
	return line, nil
}

// maxNodes bounds Query.nodes.
const maxNodes = 100

// resolveNodes fetches ids concurrently (so the loaders batch them); an entry that fails is null with its error
// at its own path, so one missing ID does not hide the others.
func resolveNodes(ctx context.Context, ids []string) ([]model.Node, error) {
	if len(ids) > maxNodes {
		return nil, inputErrorf("ids: at most %d IDs", maxNodes)
	}
	out := make([]model.Node, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = resolveNode(ctx, id)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			path := append(ast.Path{}, graphql.GetPath(ctx)...)
			graphql.AddError(ctx, &gqlerror.Error{Err: err, Message: err.Error(), Path: append(path, ast.PathIndex(i))})
		}
	}
	return out, nil
}

// viewer describes the signed-in user from their token.
func viewer(ctx context.Context) (*model.Viewer, error) {
	u := requestFrom(ctx).user
	if u == nil {
		return nil, errNoUser
	}
	var t model.UserType
	switch u.UserType {
	case auth.InternalUser:
		t = model.UserTypeInternalUser
	case auth.ExternalCommunityUser:
		t = model.UserTypeExternalCommunityUser
	default:
		// service accounts and unknown kinds: the scope says why they are refused
		if _, err := scope(ctx); err != nil {
			return nil, err
		}
		return nil, access.ErrForbidden
	}
	return &model.Viewer{Login: u.Subject, Name: u.Name, Email: optString(u.Email), UserType: t, Locale: optString(u.Locale)}, nil
}

var roles = map[access.Role]model.CustomerRole{
	access.RoleBasic: model.CustomerRoleBasic, access.RoleOrders: model.CustomerRoleOrders,
	access.RoleOrdersWithPrices: model.CustomerRoleOrdersWithPrices, access.RoleOrdersBilling: model.CustomerRoleOrdersBilling,
	access.RoleAdmin: model.CustomerRoleAdmin, access.RoleOwner: model.CustomerRoleOwner,
}

var permissions = map[access.Permission]model.Permission{
	access.ViewCustomer: model.PermissionViewCustomer, access.ViewShipments: model.PermissionViewShipments,
	access.ViewSalesOrders: model.PermissionViewSalesOrders, access.ViewPrices: model.PermissionViewPrices,
	access.ViewInvoices: model.PermissionViewInvoices,
}

// customerAccess lists the user's grants.
func customerAccess(ctx context.Context) ([]*model.CustomerAccess, error) {
	s, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	out := []*model.CustomerAccess{}
	for _, g := range s.Grants() {
		ca := &model.CustomerAccess{CustomerID: g.CustomerID, ShipToCustomerID: g.ShipToCustomerID, Role: roles[g.Role], DaysBack: g.DaysBack}
		for _, p := range g.Role.Permissions() {
			ca.Permissions = append(ca.Permissions, permissions[p])
		}
		out = append(out, ca)
	}
	return out, nil
}

// customerRole is the user's role for a customer; null for internal users.
func customerRole(ctx context.Context, customerID string) (*model.CustomerRole, error) {
	s, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	r, ok := s.RoleFor(customerID)
	if !ok {
		return nil, nil
	}
	m := roles[r]
	return &m, nil
}

// currencies lists every currency, ordered by code.
func (r *Resolver) currencies(ctx context.Context) ([]*model.Currency, error) {
	s, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	if s.Empty() {
		return []*model.Currency{}, nil
	}
	q := erpclient.Query{Set: erpclient.SetCurrencies, Select: []string{"CurrencySign", "Name"},
		OrderBy: []erpclient.OrderBy{{Prop: "CurrencySign"}}}
	s.Apply(&q)
	rows, err := erpclient.All[erpclient.Currency](ctx, r.erp, q)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Currency, 0, len(rows))
	for i := range rows {
		if s.Check(erpclient.SetCurrencies, &rows[i]) == nil {
			out = append(out, toCurrency(&rows[i]))
		}
	}
	return out, nil
}
