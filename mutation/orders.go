package mutation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
)

// maxText bounds the customer reference (ERP.net: CustomerPurchaseOrderNo is 20 characters) and the notes.
const (
	maxReference = 20
	maxNotes     = 2000
	maxReason    = 254
)

// CreateSalesOrder creates a NEW order with all its lines in one changeset.
func (s *Service) CreateSalesOrder(ctx context.Context, a Actor, in CreateInput) (Outcome, error) {
	return s.run(ctx, a, ActionCreate, in.CustomerID, "", in, func(ctx context.Context, ref string) (Outcome, error) {
		if out, refused := s.checkCreate(a, in); refused {
			return out, nil
		}
		if out, refused, err := s.checkProducts(ctx, in.Lines); err != nil || refused {
			return out, err
		}
		if ref != "" {
			// A replay whose first attempt may have committed without an answer reaching us: look before writing.
			found, err := s.orderByReference(ctx, a.Scope, in.CustomerID, ref)
			if err != nil {
				return writeError(err), nil
			}
			if found != nil {
				s.replayed()
				return Outcome{OrderID: found.ID, Version: version(found), Replayed: true, Recovered: true}, nil
			}
		}
		body := map[string]any{"Customer": erpclient.Ref{Set: erpclient.SetCustomers, ID: in.CustomerID}}
		if in.ShipToCustomerID != "" {
			body["ShipToCustomer"] = erpclient.Ref{Set: erpclient.SetCustomers, ID: in.ShipToCustomerID}
		}
		if in.RequiredDeliveryDate != nil {
			body["RequiredDeliveryDate"] = in.RequiredDeliveryDate.UTC().Format("2006-01-02")
		}
		if in.CustomerReference != nil {
			body["CustomerPurchaseOrderNo"] = *in.CustomerReference
		}
		if in.Notes != nil {
			body["DocumentNotes"] = *in.Notes
		}
		if ref != "" {
			body[s.cfg.KeyField] = ref
		}
		body["Lines"] = lineBodies(in.Lines)
		cs := &erpclient.Changeset{}
		cs.Create(erpclient.SetSalesOrders, body)
		res, err := s.cfg.ERP.Apply(ctx, cs)
		if err != nil {
			return writeError(err), nil
		}
		var created erpclient.SalesOrder
		if err := json.Unmarshal(res[0].Body, &created); err != nil || created.ODataID == "" && created.ID == "" {
			return refuse(CodeUpstreamUnavailable, "ERP.net created the order but its answer could not be read; read your orders before trying again"), nil
		}
		id := created.ID
		if id == "" {
			id = idOf(created.ODataID)
		}
		return Outcome{OrderID: id, Version: version(&created)}, nil
	})
}

// checkCreate is everything about a create that needs no upstream call.
func (s *Service) checkCreate(a Actor, in CreateInput) (Outcome, bool) {
	if a.Scope.Internal() {
		return refuse(CodeForbidden, "orders are placed for customers by their portal users; internal users cannot place them here"), true
	}
	g, visible, allowed := grantFor(a.Scope, in.CustomerID, in.ShipToCustomerID)
	if !visible {
		return refuse(CodeNotFound, "not found", "input", "customerId"), true
	}
	if !allowed {
		return refuse(CodeForbidden, "your role for this customer does not allow placing orders", "input", "customerId"), true
	}
	if in.ShipToCustomerID != "" && in.ShipToCustomerID != in.CustomerID && g.ShipToCustomerID != in.ShipToCustomerID {
		return refuse(CodeNotFound, "not found", "input", "shipToCustomerId"), true
	}
	if out, bad := s.checkLines(in.Lines, true); bad {
		return out, true
	}
	if out, bad := checkTexts(in.CustomerReference, in.Notes); bad {
		return out, true
	}
	return Outcome{}, false
}

func (s *Service) checkLines(lines []LineInput, needOne bool) (Outcome, bool) {
	if needOne && len(lines) == 0 {
		return refuse(CodeBadUserInput, "an order needs at least one line", "input", "lines"), true
	}
	if len(lines) > s.cfg.MaxLines {
		return refuse(CodeBadUserInput, "an order may have at most "+itoa(s.cfg.MaxLines)+" lines", "input", "lines"), true
	}
	var out Outcome
	for _, l := range lines {
		if e := s.checkQuantity(l.Quantity, append(slices.Clone(l.Field), "quantity")); e != nil {
			out.Errors = append(out.Errors, *e)
		}
	}
	return out, len(out.Errors) > 0
}

func checkTexts(reference, notes *string) (Outcome, bool) {
	if reference != nil && len([]rune(*reference)) > maxReference {
		return refuse(CodeBadUserInput, "the customer reference may have at most 20 characters", "input", "customerReference"), true
	}
	if notes != nil && len([]rune(*notes)) > maxNotes {
		return refuse(CodeBadUserInput, "the notes may have at most 2000 characters", "input", "notes"), true
	}
	return Outcome{}, false
}

// checkProducts refuses lines whose product does not exist (NOT_FOUND, like any id the user cannot see). One
// read for all lines; inactive products are left to ERP.net's own validation.
func (s *Service) checkProducts(ctx context.Context, lines []LineInput) (Outcome, bool, error) {
	var ids []string
	for _, l := range lines {
		if !slices.Contains(ids, l.ProductID) {
			ids = append(ids, l.ProductID)
		}
	}
	if len(ids) == 0 {
		return Outcome{}, false, nil
	}
	found, err := erpclient.ByIDs[erpclient.Product](ctx, s.cfg.ERP, erpclient.Query{Set: erpclient.SetProducts, Select: []string{"Active"}, Unscoped: true}, ids)
	if err != nil {
		return writeError(err), true, nil
	}
	have := map[string]bool{}
	for _, p := range found {
		have[p.ID] = true
	}
	var out Outcome
	for _, l := range lines {
		if !have[l.ProductID] {
			out.Errors = append(out.Errors, UserError{Field: append(slices.Clone(l.Field), "productId"), Message: "not found", Code: CodeNotFound})
		}
	}
	return out, len(out.Errors) > 0, nil
}

func lineBodies(lines []LineInput) []map[string]any {
	out := make([]map[string]any, 0, len(lines))
	for _, l := range lines {
		b := map[string]any{
			"Product":  erpclient.Ref{Set: erpclient.SetProducts, ID: l.ProductID},
			"Quantity": map[string]any{"Value": json.Number(l.Quantity)},
		}
		if l.UnitID != "" {
			b["QuantityUnit"] = erpclient.Ref{Set: erpclient.SetMeasurementUnits, ID: l.UnitID}
		}
		out = append(out, b)
	}
	return out
}

// orderByReference finds the order of customerID that carries ref in the key field.
func (s *Service) orderByReference(ctx context.Context, scope *access.Scope, customerID, ref string) (*erpclient.SalesOrder, error) {
	q := erpclient.Query{Set: erpclient.SetSalesOrders, Top: 2,
		Filter: erpclient.And(erpclient.Eq(s.cfg.KeyField, erpclient.String(ref)), erpclient.Eq("Customer", erpclient.RefTo(erpclient.SetCustomers, customerID))),
		Select: append([]string{"ObjectVersion"}, access.CheckProps(erpclient.SetSalesOrders)...)}
	scope.Apply(&q)
	page, err := erpclient.List[erpclient.SalesOrder](ctx, s.cfg.ERP, q)
	if err != nil || len(page.Items) == 0 {
		return nil, err
	}
	return &page.Items[0], nil
}

// current is an order as a write checks it: visible to the user, with its state, version and lines.
type current struct {
	order erpclient.SalesOrder
	lines map[string]bool
}

// readOrder reads the order a write addresses, within the user's scope.
func (s *Service) readOrder(ctx context.Context, scope *access.Scope, id string) (*current, Outcome, bool) {
	q := erpclient.Query{Set: erpclient.SetSalesOrders,
		Select: append([]string{"State", "Void", "ObjectVersion"}, access.CheckProps(erpclient.SetSalesOrders)...),
		Expand: []erpclient.Expand{{Prop: "Lines", Select: []string{"Id"}}}}
	scope.Apply(&q)
	o, err := erpclient.Get[erpclient.SalesOrder](ctx, s.cfg.ERP, q, id)
	if errors.Is(err, erpclient.ErrNotFound) {
		return nil, refuse(CodeNotFound, "not found", "input", "id"), true
	}
	if err != nil {
		return nil, writeError(err), true
	}
	if scope.Check(erpclient.SetSalesOrders, &o) != nil {
		return nil, refuse(CodeNotFound, "not found", "input", "id"), true
	}
	c := &current{order: o, lines: map[string]bool{}}
	for _, l := range o.Lines {
		c.lines[l.ID] = true
	}
	return c, Outcome{}, false
}

// stale answers STALE_OBJECT with the order's current version.
func stale(v int) Outcome {
	out := refuse(CodeStaleObject, "the order was changed since you read it; its current version is "+itoa(v), "input", "expectedVersion")
	out.CurrentVersion = &v
	return out
}

// editableOrder reads the order a user wants to change and refuses it as the user must be told: NOT_FOUND outside
// their access, FORBIDDEN for a role that may not change orders, STALE_OBJECT for another version, and
// DOCUMENT_READ_ONLY (with the current order) once it is no longer NEW.
func (s *Service) editableOrder(ctx context.Context, a Actor, id string, expected int) (*current, Outcome, bool) {
	if a.Scope.Internal() || !a.Scope.AllowsAny(access.ViewSalesOrders) {
		return nil, refuse(CodeNotFound, "not found", "input", "id"), true
	}
	c, out, refused := s.readOrder(ctx, a.Scope, id)
	if refused {
		return nil, out, true
	}
	if out, refused := s.afterRead(a, c, expected); refused {
		return nil, out, true
	}
	if out, refused := editableNew(&c.order); refused {
		return nil, withOrder(out, c.order.ID), true
	}
	return c, Outcome{}, false
}

// editableNew refuses writes to an order that is no longer NEW (submitted, released, void).
func editableNew(o *erpclient.SalesOrder) (Outcome, bool) {
	if o.Void || o.State != erpclient.StateNew {
		return refuse(CodeDocumentReadOnly, "the order is "+stateWord(o)+" and can no longer be changed"), true
	}
	return Outcome{}, false
}

func stateWord(o *erpclient.SalesOrder) string {
	switch {
	case o.Void:
		return "void"
	case o.State.Rank() >= erpclient.StateReleased.Rank():
		return "released"
	}
	return "submitted"
}

// afterRead runs the checks common to writes on an existing order: the order's customer must allow ordering,
// and expectedVersion must be current (checked again atomically by ERP.net where it can be).
func (s *Service) afterRead(a Actor, c *current, expected int) (Outcome, bool) {
	if _, _, allowed := grantFor(a.Scope, refID(c.order.Customer), refID(c.order.ShipToCustomer)); !allowed {
		return refuse(CodeForbidden, "your role for this customer does not allow changing orders", "input", "id"), true
	}
	if v := version(&c.order); v != expected {
		return withOrder(stale(v), c.order.ID), true
	}
	return Outcome{}, false
}

func withOrder(o Outcome, id string) Outcome { o.OrderID = id; return o }

// UpdateSalesOrder changes header fields and lines of a NEW order, conditional on expectedVersion.
func (s *Service) UpdateSalesOrder(ctx context.Context, a Actor, in UpdateInput) (Outcome, error) {
	return s.run(ctx, a, ActionUpdate, "", in.OrderID, in, func(ctx context.Context, _ string) (Outcome, error) {
		if out, bad := s.checkLines(in.AddLines, false); bad {
			return out, nil
		}
		var errs Outcome
		for _, ch := range in.ChangeLines {
			if e := s.checkQuantity(ch.Quantity, append(slices.Clone(ch.Field), "quantity")); e != nil {
				errs.Errors = append(errs.Errors, *e)
			}
		}
		if len(errs.Errors) > 0 {
			return errs, nil
		}
		if out, bad := checkTexts(in.CustomerReference, in.Notes); bad {
			return out, nil
		}
		if len(in.AddLines)+len(in.ChangeLines)+len(in.RemoveLineIDs) == 0 && in.RequiredDeliveryDate == nil && in.CustomerReference == nil && in.Notes == nil {
			return refuse(CodeBadUserInput, "nothing to change", "input"), nil
		}
		c, out, refused := s.editableOrder(ctx, a, in.OrderID, in.ExpectedVersion)
		if refused {
			return out, nil
		}
		for i, id := range in.RemoveLineIDs {
			if !c.lines[id] {
				return refuse(CodeNotFound, "not found", "input", "removeLineIds", itoa(i)), nil
			}
		}
		for _, ch := range in.ChangeLines {
			if !c.lines[ch.LineID] {
				return refuse(CodeNotFound, "not found", append(slices.Clone(ch.Field), "id")...), nil
			}
		}
		if n := len(c.lines) + len(in.AddLines) - len(in.RemoveLineIDs); n > s.cfg.MaxLines {
			return refuse(CodeBadUserInput, "an order may have at most "+itoa(s.cfg.MaxLines)+" lines", "input", "addLines"), nil
		}
		if out, refused, err := s.checkProducts(ctx, in.AddLines); err != nil || refused {
			return out, err
		}
		cs := &erpclient.Changeset{}
		var props []erpclient.Prop
		if in.CustomerReference != nil {
			props = append(props, erpclient.Prop{Name: "CustomerPurchaseOrderNo", Value: nullable(*in.CustomerReference)})
		}
		if in.RequiredDeliveryDate != nil {
			props = append(props, erpclient.Prop{Name: "RequiredDeliveryDate", Value: in.RequiredDeliveryDate.UTC().Format("2006-01-02")})
		}
		if in.Notes != nil {
			props = append(props, erpclient.Prop{Name: "DocumentNotes", Value: nullable(*in.Notes)})
		}
		v := in.ExpectedVersion
		if len(props) > 0 {
			cs.Patch(erpclient.SetSalesOrders, c.order.ID, &v, props...)
		} else {
			cs.CheckVersion(erpclient.SetSalesOrders, c.order.ID, v)
		}
		orderRef := erpclient.Ref{Set: erpclient.SetSalesOrders, ID: c.order.ID}
		for _, b := range lineBodies(in.AddLines) {
			b["SalesOrder"] = orderRef
			cs.Create(erpclient.SetSalesOrderLines, b)
		}
		for _, ch := range in.ChangeLines {
			cs.Patch(erpclient.SetSalesOrderLines, ch.LineID, nil, erpclient.Prop{Name: "Quantity", Value: map[string]any{"Value": json.Number(ch.Quantity)}})
		}
		for _, id := range in.RemoveLineIDs {
			cs.Delete(erpclient.SetSalesOrderLines, id)
		}
		if _, err := s.cfg.ERP.Apply(ctx, cs); err != nil {
			return s.afterFailedWrite(ctx, a, c.order.ID, err), nil
		}
		return Outcome{OrderID: c.order.ID}, nil
	})
}

func changedLines(chs []LineChange) []string {
	out := make([]string, 0, len(chs))
	for _, ch := range chs {
		out = append(out, ch.LineID)
	}
	return out
}

// nullable sends an empty text as null (clearing the property).
func nullable(s string) any {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return s
}

// afterFailedWrite maps a failed write on an existing order; a version conflict that ERP.net detected (someone
// wrote between our read and our write) is answered with the current version, read again.
func (s *Service) afterFailedWrite(ctx context.Context, a Actor, id string, err error) Outcome {
	out := withOrder(writeError(err), id)
	if errors.Is(err, erpclient.ErrStale) {
		if c, _, refused := s.readOrder(ctx, a.Scope, id); !refused {
			return withOrder(stale(version(&c.order)), id)
		}
	}
	return out
}

// SubmitSalesOrder moves a NEW order to the configured state, conditional on expectedVersion.
func (s *Service) SubmitSalesOrder(ctx context.Context, a Actor, in SubmitInput) (Outcome, error) {
	return s.run(ctx, a, ActionSubmit, "", in.OrderID, in, func(ctx context.Context, _ string) (Outcome, error) {
		c, out, refused := s.editableOrder(ctx, a, in.OrderID, in.ExpectedVersion)
		if refused {
			return out, nil
		}
		if len(c.lines) == 0 {
			return refuse(CodeBadUserInput, "an order without lines cannot be submitted", "input", "id"), nil
		}
		cs := &erpclient.Changeset{}
		cs.CheckVersion(erpclient.SetSalesOrders, c.order.ID, in.ExpectedVersion)
		cs.ChangeState(erpclient.SetSalesOrders, c.order.ID, s.cfg.SubmitState)
		if _, err := s.cfg.ERP.Apply(ctx, cs); err != nil {
			return s.afterFailedWrite(ctx, a, c.order.ID, err), nil
		}
		return Outcome{OrderID: c.order.ID}, nil
	})
}

// CancelSalesOrder deletes a NEW draft, or voids a submitted order for the roles that may (Admin, Owner).
func (s *Service) CancelSalesOrder(ctx context.Context, a Actor, in CancelInput) (Outcome, error) {
	return s.run(ctx, a, ActionCancel, "", in.OrderID, in, func(ctx context.Context, _ string) (Outcome, error) {
		if len([]rune(in.Reason)) > maxReason {
			return refuse(CodeBadUserInput, "the reason may have at most 254 characters", "input", "reason"), nil
		}
		if a.Scope.Internal() || !a.Scope.AllowsAny(access.ViewSalesOrders) {
			return refuse(CodeNotFound, "not found", "input", "id"), nil
		}
		c, out, refused := s.readOrder(ctx, a.Scope, in.OrderID)
		if refused {
			return out, nil
		}
		if out, refused := s.afterRead(a, c, in.ExpectedVersion); refused {
			return out, nil
		}
		o := &c.order
		cs := &erpclient.Changeset{}
		if !o.Void && o.State == erpclient.StateNew {
			cs.CheckVersion(erpclient.SetSalesOrders, o.ID, in.ExpectedVersion)
			cs.Delete(erpclient.SetSalesOrders, o.ID)
			if _, err := s.cfg.ERP.Apply(ctx, cs); err != nil {
				return s.afterFailedWrite(ctx, a, o.ID, err), nil
			}
			return Outcome{DeletedOrderID: o.ID}, nil
		}
		if o.Void {
			return withOrder(refuse(CodeDocumentReadOnly, "the order is already void"), o.ID), nil
		}
		if g, _, _ := grantFor(a.Scope, refID(o.Customer), refID(o.ShipToCustomer)); g.Role < access.RoleAdmin {
			return withOrder(refuse(CodeForbidden, "only the Admin and Owner roles may cancel a submitted order", "input", "id"), o.ID), nil
		}
		reason := strings.TrimSpace(in.Reason)
		if reason == "" {
			reason = "Cancelled by the customer in the portal"
		}
		// ERP.net refuses a PATCH of a released order, so the version is checked against the read above only.
		cs.MakeVoid(erpclient.SetSalesOrders, o.ID, reason)
		if _, err := s.cfg.ERP.Apply(ctx, cs); err != nil {
			return s.afterFailedWrite(ctx, a, o.ID, err), nil
		}
		return Outcome{OrderID: o.ID}, nil
	})
}

func version(o *erpclient.SalesOrder) int {
	if o.ObjectVersion == nil {
		return 0
	}
	return *o.ObjectVersion
}

func refID(r *erpclient.Ref) string {
	if r == nil {
		return ""
	}
	return r.ID
}

// idOf extracts the GUID of "Set(guid)".
func idOf(odataID string) string {
	if i := strings.LastIndexByte(odataID, '('); i >= 0 && strings.HasSuffix(odataID, ")") {
		return odataID[i+1 : len(odataID)-1]
	}
	return ""
}
