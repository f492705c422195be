package erpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Writes (docs/erpnet.md § Writes): POST creates and answers the created
// entity; PATCH updates the given properties in body order; document state
// changes only through the ChangeState action; a $batch changeset applies
// atomically. Writes go through the scheduler but are never retried (except
// once after a 401, which ERP.net answers before running anything), and each
// is written to the audit log.

// Prop is one property of a PATCH body. A slice of Props keeps its order:
// ERP.net applies properties in body order and some depend on others.
type Prop struct {
	Name  string
	Value any // JSON-encodable; Ref encodes as {"@odata.id":…}
}

// NewSalesOrder is the input of CreateSalesOrder.
type NewSalesOrder struct {
	DocumentType            *Ref                `json:"DocumentType,omitempty"`
	EnterpriseCompany       *Ref                `json:"EnterpriseCompany,omitempty"`
	Customer                Ref                 `json:"Customer"`
	ShipToCustomer          *Ref                `json:"ShipToCustomer,omitempty"`
	ToParty                 *Ref                `json:"ToParty,omitempty"`
	DocumentCurrency        *Ref                `json:"DocumentCurrency,omitempty"`
	DocumentDate            *DateTime           `json:"DocumentDate,omitempty"`
	CustomerPurchaseOrderNo string              `json:"CustomerPurchaseOrderNo,omitempty"`
	RequiredDeliveryDate    *DateTime           `json:"RequiredDeliveryDate,omitempty"`
	DocumentNotes           string              `json:"DocumentNotes,omitempty"`
	Lines                   []NewSalesOrderLine `json:"Lines"`
}

// NewSalesOrderLine is one line of NewSalesOrder.
type NewSalesOrderLine struct {
	LineNo               int       `json:"LineNo,omitempty"`
	Product              Ref       `json:"Product"`
	Quantity             Quantity  `json:"Quantity"`
	QuantityUnit         *Ref      `json:"QuantityUnit,omitempty"`
	UnitPrice            *Amount   `json:"UnitPrice,omitempty"`
	RequiredDeliveryDate *DateTime `json:"RequiredDeliveryDate,omitempty"`
}

// CreateSalesOrder creates a sales order with its lines and returns it as
// ERP.net answers it (Id, DocumentNo, State…).
func (c *Client) CreateSalesOrder(ctx context.Context, in NewSalesOrder) (SalesOrder, error) {
	if len(in.Lines) == 0 {
		return SalesOrder{}, fmt.Errorf("erpclient: create %s: %w: a sales order needs at least one line", SetSalesOrders, ErrInvalidQuery)
	}
	return Create[SalesOrder](ctx, c, SetSalesOrders, in)
}

// Create POSTs entity (any JSON-encodable value, refs as Ref) to set and
// decodes the created entity.
func Create[T any](ctx context.Context, c *Client, set string, entity any) (T, error) {
	var zero T
	op := "create " + set
	if err := checkSet(set); err != nil {
		return zero, fmt.Errorf("erpclient: %s: %w", op, err)
	}
	body, err := json.Marshal(entity)
	if err != nil {
		return zero, fmt.Errorf("erpclient: %s: %w: %w", op, ErrInvalidQuery, err)
	}
	res, err := c.write(ctx, &request{method: http.MethodPost, path: set, body: body, contentType: "application/json", op: op}, "")
	if err != nil {
		return zero, err
	}
	return decodeEntity[T](op, res.body)
}

// Patch updates props of set(id), in order. A non-nil objectVersion is sent
// first, so ERP.net refuses the change (ErrConflict) if the entity changed
// since it was read.
func (c *Client) Patch(ctx context.Context, set, id string, objectVersion *int, props ...Prop) error {
	op := "update " + set
	path, body, err := patchOp(set, id, objectVersion, props)
	if err != nil {
		return fmt.Errorf("erpclient: %s: %w", op, err)
	}
	_, err = c.write(ctx, &request{method: http.MethodPatch, path: path, body: body, contentType: "application/json", op: op}, id)
	return err
}

// ChangeState moves a document to state with the ChangeState action.
func (c *Client) ChangeState(ctx context.Context, set, id string, state DocumentState) error {
	op := "change state of " + set
	path, body, err := changeStateOp(set, id, state)
	if err != nil {
		return fmt.Errorf("erpclient: %s: %w", op, err)
	}
	_, err = c.write(ctx, &request{method: http.MethodPost, path: path, body: body, contentType: "application/json", op: op}, id)
	return err
}

// handleRE: a reference to an earlier operation of the same changeset.
var handleRE = regexp.MustCompile(`^\$[1-9][0-9]{0,3}$`)

// entityPath is Set(guid), or $n inside a changeset.
func entityPath(set, id string) (string, error) {
	if err := checkSet(set); err != nil {
		return "", err
	}
	if handleRE.MatchString(id) {
		return id, nil
	}
	g, err := canonicalGUID(id)
	if err != nil {
		return "", err
	}
	return set + "(" + g + ")", nil
}

func patchOp(set, id string, objectVersion *int, props []Prop) (string, []byte, error) {
	path, err := entityPath(set, id)
	if err != nil {
		return "", nil, err
	}
	if len(props) == 0 {
		return "", nil, invalid("nothing to update")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	seen := map[string]bool{}
	if objectVersion != nil {
		fmt.Fprintf(&b, `"ObjectVersion":%d`, *objectVersion)
		seen["ObjectVersion"] = true
	}
	for _, p := range props {
		if !isIdent(p.Name) {
			return "", nil, invalid("property name %q is not an identifier", truncate(p.Name, 60))
		}
		if seen[p.Name] {
			return "", nil, invalid("property %s given twice", p.Name)
		}
		seen[p.Name] = true
		v, err := json.Marshal(p.Value)
		if err != nil {
			return "", nil, invalid("property %s: %v", p.Name, err)
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:", p.Name)
		b.Write(v)
	}
	b.WriteByte('}')
	return path, b.Bytes(), nil
}

func changeStateOp(set, id string, state DocumentState) (string, []byte, error) {
	path, err := entityPath(set, id)
	if err != nil {
		return "", nil, err
	}
	if !state.Valid() {
		return "", nil, invalid("unknown document state %q", truncate(string(state), 40))
	}
	body, _ := json.Marshal(map[string]string{"newState": string(state)})
	return path + "/ChangeState", body, nil
}

// write sends one write and audits it.
func (c *Client) write(ctx context.Context, req *request, id string) (*response, error) {
	start := time.Now()
	res, err := c.send(ctx, req)
	// whatever the answer: a write whose answer was lost may still have committed
	if req.path != "$batch" {
		c.Invalidate(setOf(req.path))
	}
	c.auditWrite(ctx, req.op, id, start, res, err)
	return res, err
}

func (c *Client) auditWrite(ctx context.Context, op, id string, start time.Time, res *response, err error) {
	attrs := []slog.Attr{slog.String("op", op), slog.Duration("duration", time.Since(start))}
	if id != "" {
		attrs = append(attrs, slog.String("id", id))
	}
	if res != nil {
		attrs = append(attrs, slog.Int("status", res.status))
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "failed"), slog.String("error", err.Error()))
		c.audit.LogAttrs(ctx, slog.LevelWarn, "erp write", attrs...)
		return
	}
	c.audit.LogAttrs(ctx, slog.LevelInfo, "erp write", append(attrs, slog.String("outcome", "ok"))...)
}

// Changeset collects writes that ERP.net applies atomically in one $batch:
// all of them or none. Build it with the methods, then Client.Apply.
type Changeset struct {
	ops []*changeOp
	err error
}

type changeOp struct {
	method, path string
	body         []byte
}

// maxChangesetOps bounds one changeset.
const maxChangesetOps = 100

func (cs *Changeset) add(method, path string, body []byte, err error) {
	if cs.err != nil {
		return
	}
	if err == nil && len(cs.ops) >= maxChangesetOps {
		err = invalid("more than %d operations in one changeset", maxChangesetOps)
	}
	if err != nil {
		cs.err = err
		return
	}
	cs.ops = append(cs.ops, &changeOp{method: method, path: path, body: body})
}

// Create adds a create and returns its handle ("$1", "$2"…), which later
// operations of the same changeset accept in place of an id.
func (cs *Changeset) Create(set string, entity any) string {
	body, err := json.Marshal(entity)
	if err != nil {
		err = invalid("create %s: %v", set, err)
	}
	if err == nil {
		err = checkSet(set)
	}
	cs.add(http.MethodPost, set, body, err)
	return fmt.Sprintf("$%d", len(cs.ops))
}

// Patch adds an update (see Client.Patch); id may be a handle from Create.
func (cs *Changeset) Patch(set, id string, objectVersion *int, props ...Prop) {
	path, body, err := patchOp(set, id, objectVersion, props)
	cs.add(http.MethodPatch, path, body, err)
}

// ChangeState adds a state change (see Client.ChangeState); id may be a handle from Create.
func (cs *Changeset) ChangeState(set, id string, state DocumentState) {
	path, body, err := changeStateOp(set, id, state)
	cs.add(http.MethodPost, path, body, err)
}

// Delete adds a DELETE of set(id) (ERP.net deletes only documents that are
// still editable, i.e. in state New); id may be a handle from Create.
func (cs *Changeset) Delete(set, id string) {
	path, err := entityPath(set, id)
	cs.add(http.MethodDelete, path, nil, err)
}

// MakeVoid adds the MakeVoid action on a document: ERP.net annuls it (planned
// or released documents; a New one is deleted instead).
func (cs *Changeset) MakeVoid(set, id, reason string) {
	path, err := entityPath(set, id)
	if err == nil && strings.TrimSpace(reason) == "" {
		err = invalid("a void needs a reason")
	}
	body, _ := json.Marshal(map[string]string{"reason": reason, "voidType": "Void"})
	cs.add(http.MethodPost, path+"/MakeVoid", body, err)
}

// CheckVersion adds a PATCH that carries only ObjectVersion: ERP.net refuses
// it (ErrStale) when set(id)'s aggregate changed since version was read, and
// so makes the rest of the changeset conditional on it. It works only on
// editable documents (ERP.net refuses any PATCH of a released one).
func (cs *Changeset) CheckVersion(set, id string, version int) {
	path, err := entityPath(set, id)
	body := []byte(fmt.Sprintf(`{"ObjectVersion":%d}`, version))
	cs.add(http.MethodPatch, path, body, err)
}

// Len is the number of operations in the changeset.
func (cs *Changeset) Len() int { return len(cs.ops) }

// Result is the answer to one operation of an applied changeset.
type Result struct {
	Status int
	Body   json.RawMessage // the created entity for creates; empty for most updates
}

// Apply sends the changeset as one atomic $batch. On success it returns one
// Result per operation, in order; if ERP.net refuses any operation, nothing
// is applied and the error is that operation's (ErrConflict for version
// mismatches and read-only documents).
func (c *Client) Apply(ctx context.Context, cs *Changeset) ([]Result, error) {
	const op = "apply changeset"
	if cs.err != nil {
		return nil, fmt.Errorf("erpclient: %s: %w", op, cs.err)
	}
	if len(cs.ops) == 0 {
		return nil, fmt.Errorf("erpclient: %s: %w: empty changeset", op, ErrInvalidQuery)
	}
	ct, body := c.changesetBody(cs.ops)
	res, err := c.write(ctx, &request{method: http.MethodPost, path: "$batch", body: body, contentType: ct, op: op}, "")
	for _, o := range cs.ops {
		if !strings.HasPrefix(o.path, "$") { // a handle's set is its create's
			c.Invalidate(setOf(o.path))
		}
	}
	if err != nil {
		return nil, err
	}
	parts, err := parseBatch(res.header.Get("Content-Type"), res.body)
	if err != nil {
		return nil, unavailable(op, err)
	}
	for i, p := range parts {
		if !p.ok() {
			e := statusError(fmt.Sprintf("%s (operation %d)", op, i+1), p.status, p.header, p.body)
			return nil, e
		}
	}
	if len(parts) != len(cs.ops) {
		return nil, unavailable(op, fmt.Errorf("$batch answered %d parts for %d operations", len(parts), len(cs.ops)))
	}
	out := make([]Result, len(parts))
	for i, p := range parts {
		out[i] = Result{Status: p.status, Body: json.RawMessage(p.body)}
	}
	return out, nil
}
