package graph

import (
	"cmp"
	"context"
	"errors"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/graph/model"
	"github.com/erpgraph/erpgraph/mutation"
)

// The mutations map GraphQL input to mutation's service and its outcome back to a payload; the service does the
// checks, the writes and the bookkeeping.

// prioritizeMutations runs the ERP.net calls of a mutation operation (its checks, its changeset, the reads of its
// payload) ahead of queued reads: a write is not starved behind a queue of reads (erpclient.WithPriority).
func prioritizeMutations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Mutation {
		ctx = erpclient.WithPriority(ctx)
	}
	return next(ctx)
}

// idemHeaderKey carries the request's Idempotency-Key header.
type idemHeaderKey struct{}

// withIdempotencyHeader notes the Idempotency-Key header of the HTTP request.
func withIdempotencyHeader(ctx context.Context, v string) context.Context {
	if v == "" {
		return ctx
	}
	return context.WithValue(ctx, idemHeaderKey{}, v)
}

// maxKeyLen bounds idempotency keys (the IETF draft sets no limit; 255 covers UUIDs and ULIDs with prefixes).
const maxKeyLen = 255

// actor builds the mutation's Actor: the user, their scope, and the idempotency key from the argument or, for a
// document with a single mutation, the Idempotency-Key header.
func (r *Resolver) actor(ctx context.Context, arg *string) (mutation.Actor, *mutation.UserError, error) {
	rq := requestFrom(ctx)
	if rq.user == nil {
		return mutation.Actor{}, nil, errNoUser
	}
	scope, err := rq.Scope(ctx)
	if err != nil {
		return mutation.Actor{}, nil, err
	}
	a := mutation.Actor{UserID: cmp.Or(rq.user.ID, rq.user.Subject), Scope: scope, RequestID: rq.id}
	header, _ := ctx.Value(idemHeaderKey{}).(string)
	key := ""
	if arg != nil {
		key = *arg
	}
	if header != "" {
		if !singleMutation(ctx) {
			return a, &mutation.UserError{Field: []string{"input", "idempotencyKey"}, Code: mutation.CodeBadUserInput,
				Message: "the Idempotency-Key header applies to documents with a single mutation; pass idempotencyKey to each mutation instead"}, nil
		}
		if key != "" && key != header {
			return a, &mutation.UserError{Field: []string{"input", "idempotencyKey"}, Code: mutation.CodeBadUserInput,
				Message: "the idempotencyKey argument and the Idempotency-Key header differ"}, nil
		}
		key = header
	}
	if arg != nil && key == "" || len(key) > maxKeyLen || !printableASCII(key) {
		return a, &mutation.UserError{Field: []string{"input", "idempotencyKey"}, Code: mutation.CodeBadUserInput,
			Message: "an idempotency key is 1 to 255 printable ASCII characters"}, nil
	}
	a.IdempotencyKey = key
	return a, nil, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// singleMutation reports whether the operation selects exactly one root field.
func singleMutation(ctx context.Context) bool {
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil || op.Operation != ast.Mutation || len(op.SelectionSet) != 1 {
		return false
	}
	_, ok := op.SelectionSet[0].(*ast.Field)
	return ok
}

// payload turns an outcome into the GraphQL payload, drops what the write changed from the request's loaders,
// and says in extensions when the outcome is a replay.
func payload(ctx context.Context, out mutation.Outcome, clientMutationID *string) *model.SalesOrderPayload {
	p := &model.SalesOrderPayload{OrderID: out.OrderID, CurrentVersion: out.CurrentVersion, ClientMutationID: clientMutationID,
		UserErrors: []*model.UserError{}}
	for _, e := range out.Errors {
		p.UserErrors = append(p.UserErrors, &model.UserError{Field: orEmpty(e.Field), Message: e.Message, Code: e.Code})
	}
	if out.DeletedOrderID != "" {
		id := model.EncodeID("SalesOrder", out.DeletedOrderID)
		p.DeletedSalesOrderID = &id
	}
	l := loader.For(ctx)
	for _, id := range []string{out.OrderID, out.DeletedOrderID} {
		if id != "" {
			l.SalesOrderByID.Clear(ctx, id)
			l.SalesOrderLinesByOrder.Clear(ctx, id)
		}
	}
	if out.Replayed {
		graphql.RegisterExtension(ctx, "idempotency", map[string]any{"replayed": true, "recovered": out.Recovered})
	}
	return p
}

func refused(e *mutation.UserError, clientMutationID *string) *model.SalesOrderPayload {
	return &model.SalesOrderPayload{ClientMutationID: clientMutationID,
		UserErrors: []*model.UserError{{Field: orEmpty(e.Field), Message: e.Message, Code: e.Code}}}
}

// badID is the userError of a global ID that is not of the expected type: NOT_FOUND, exactly like an ID that
// does not exist.
func badID(field ...string) *mutation.UserError {
	return &mutation.UserError{Field: field, Code: mutation.CodeNotFound, Message: "not found"}
}

func decodeLines(in []*model.SalesOrderLineInput, name string) ([]mutation.LineInput, *mutation.UserError) {
	out := make([]mutation.LineInput, 0, len(in))
	for i, l := range in {
		field := []string{"input", name, strconv.Itoa(i)}
		pid, err := model.DecodeIDOf("Product", l.ProductID)
		if err != nil {
			return nil, badID(append(field, "productId")...)
		}
		li := mutation.LineInput{ProductID: pid, Quantity: string(l.Quantity), Field: field}
		if l.UnitID != nil {
			if li.UnitID, err = model.DecodeIDOf("MeasurementUnit", *l.UnitID); err != nil {
				return nil, badID(append(field, "unitId")...)
			}
		}
		out = append(out, li)
	}
	return out, nil
}

// mutate is what every mutation shares: writes must be on, the actor (user, scope, idempotency key) is resolved,
// then write decodes the input and writes. A user error from either step is the payload's userErrors, decided
// before any ERP.net call where it comes from the input.
func (r *mutationResolver) mutate(ctx context.Context, key, clientMutationID *string,
	write func(a mutation.Actor) (mutation.Outcome, *mutation.UserError, error)) (*model.SalesOrderPayload, error) {
	if err := r.writesEnabled(); err != nil {
		return nil, err
	}
	a, uerr, err := r.actor(ctx, key)
	if err != nil {
		return nil, err
	}
	if uerr != nil {
		return refused(uerr, clientMutationID), nil
	}
	out, uerr, err := write(a)
	if err != nil {
		return nil, err
	}
	if uerr != nil {
		return refused(uerr, clientMutationID), nil
	}
	return payload(ctx, out, clientMutationID), nil
}

func (r *mutationResolver) createSalesOrder(ctx context.Context, in model.CreateSalesOrderInput) (*model.SalesOrderPayload, error) {
	return r.mutate(ctx, in.IdempotencyKey, in.ClientMutationID, func(a mutation.Actor) (mutation.Outcome, *mutation.UserError, error) {
		cust, err := model.DecodeIDOf("Customer", in.CustomerID)
		if err != nil {
			return mutation.Outcome{}, badID("input", "customerId"), nil
		}
		ci := mutation.CreateInput{CustomerID: cust, RequiredDeliveryDate: in.RequiredDeliveryDate, CustomerReference: in.CustomerReference, Notes: in.Notes}
		if in.ShipToCustomerID != nil {
			if ci.ShipToCustomerID, err = model.DecodeIDOf("Customer", *in.ShipToCustomerID); err != nil {
				return mutation.Outcome{}, badID("input", "shipToCustomerId"), nil
			}
		}
		var uerr *mutation.UserError
		if ci.Lines, uerr = decodeLines(in.Lines, "lines"); uerr != nil {
			return mutation.Outcome{}, uerr, nil
		}
		out, err := r.writes.CreateSalesOrder(ctx, a, ci)
		return out, nil, err
	})
}

func (r *mutationResolver) updateSalesOrder(ctx context.Context, in model.UpdateSalesOrderInput) (*model.SalesOrderPayload, error) {
	return r.mutate(ctx, in.IdempotencyKey, in.ClientMutationID, func(a mutation.Actor) (mutation.Outcome, *mutation.UserError, error) {
		id, err := model.DecodeIDOf("SalesOrder", in.ID)
		if err != nil {
			return mutation.Outcome{}, badID("input", "id"), nil
		}
		ui := mutation.UpdateInput{OrderID: id, ExpectedVersion: in.ExpectedVersion, RequiredDeliveryDate: in.RequiredDeliveryDate,
			CustomerReference: in.CustomerReference, Notes: in.Notes}
		var uerr *mutation.UserError
		if ui.AddLines, uerr = decodeLines(in.AddLines, "addLines"); uerr != nil {
			return mutation.Outcome{}, uerr, nil
		}
		for i, ch := range in.ChangeLines {
			field := []string{"input", "changeLines", strconv.Itoa(i)}
			lid, err := model.DecodeIDOf("SalesOrderLine", ch.ID)
			if err != nil {
				return mutation.Outcome{}, badID(append(field, "id")...), nil
			}
			ui.ChangeLines = append(ui.ChangeLines, mutation.LineChange{LineID: lid, Quantity: string(ch.Quantity), Field: field})
		}
		for i, raw := range in.RemoveLineIds {
			lid, err := model.DecodeIDOf("SalesOrderLine", raw)
			if err != nil {
				return mutation.Outcome{}, badID("input", "removeLineIds", strconv.Itoa(i)), nil
			}
			ui.RemoveLineIDs = append(ui.RemoveLineIDs, lid)
		}
		out, err := r.writes.UpdateSalesOrder(ctx, a, ui)
		return out, nil, err
	})
}

func (r *mutationResolver) submitSalesOrder(ctx context.Context, in model.SubmitSalesOrderInput) (*model.SalesOrderPayload, error) {
	return r.mutate(ctx, in.IdempotencyKey, in.ClientMutationID, func(a mutation.Actor) (mutation.Outcome, *mutation.UserError, error) {
		id, err := model.DecodeIDOf("SalesOrder", in.ID)
		if err != nil {
			return mutation.Outcome{}, badID("input", "id"), nil
		}
		out, err := r.writes.SubmitSalesOrder(ctx, a, mutation.SubmitInput{OrderID: id, ExpectedVersion: in.ExpectedVersion})
		return out, nil, err
	})
}

func (r *mutationResolver) cancelSalesOrder(ctx context.Context, in model.CancelSalesOrderInput) (*model.SalesOrderPayload, error) {
	return r.mutate(ctx, in.IdempotencyKey, in.ClientMutationID, func(a mutation.Actor) (mutation.Outcome, *mutation.UserError, error) {
		id, err := model.DecodeIDOf("SalesOrder", in.ID)
		if err != nil {
			return mutation.Outcome{}, badID("input", "id"), nil
		}
		ci := mutation.CancelInput{OrderID: id, ExpectedVersion: in.ExpectedVersion}
		if in.Reason != nil {
			ci.Reason = *in.Reason
		}
		out, err := r.writes.CancelSalesOrder(ctx, a, ci)
		return out, nil, err
	})
}

// writesEnabled refuses every mutation, before anything else, on a read-only server.
func (r *Resolver) writesEnabled() error {
	if !r.writes.Enabled() {
		return mutation.ErrDisabled
	}
	return nil
}

// payloadOrder resolves a payload's order with the request's loaders (the operation's selection, the access
// post-check, prices hidden as in reads).
func payloadOrder(ctx context.Context, p *model.SalesOrderPayload) (*model.SalesOrder, error) {
	if p.OrderID == "" {
		return nil, nil
	}
	o, err := loader.For(ctx).SalesOrderByID.Load(ctx, p.OrderID)()
	if errors.Is(err, loader.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return toSalesOrder(o), nil
}

func orEmpty(field []string) []string {
	if field == nil {
		return []string{}
	}
	return field
}
