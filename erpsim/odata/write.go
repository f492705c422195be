package odata

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/google/uuid"
)

// maxBody caps write bodies; sales orders with lines are far smaller.
const maxBody = 4 << 20

// tx is one atomic unit of writes: a single request or a $batch changeset.
// The caller holds the store's write lock; undo steps roll a failed unit back.
type tx struct {
	undo []func()
	ids  map[string]*entity // Content-ID → the entity a changeset request created or addressed
	now  time.Time
}

func (t *tx) onUndo(f func()) { t.undo = append(t.undo, f) }

func (t *tx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = nil
}

// writeResult is the answer to one write.
type writeResult struct {
	status int
	body   []byte
	entity *entity
	header http.Header
}

// writeOne serves a write outside $batch as its own atomic unit.
func (h *handler) writeOne(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return invalid("Cannot read the request body.")
	}
	if len(body) > maxBody {
		return invalid("The request body is too large.")
	}
	res, err := h.atomically(func(t *tx) (writeResult, error) {
		return h.apply(r.Context(), t, r, r.Method, strings.TrimPrefix(r.URL.Path, "/"), r.URL.RawQuery, body)
	})
	if err != nil {
		return err
	}
	for k, v := range res.header {
		w.Header()[k] = v
	}
	if res.body == nil {
		w.Header().Set("OData-Version", odataVersion)
		w.WriteHeader(res.status)
		return nil
	}
	writeJSON(w, res.status, res.body)
	return nil
}

// atomically runs f under the write lock and rolls its writes back when it
// fails or panics.
func (h *handler) atomically(f func(t *tx) (writeResult, error)) (res writeResult, err error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	t := &tx{ids: map[string]*entity{}, now: h.opts.Now()}
	defer func() {
		if p := recover(); p != nil {
			t.rollback()
			panic(p)
		}
		if err != nil {
			t.rollback()
		}
	}()
	return f(t)
}

var errForbidden = errorf(http.StatusForbidden, codeForbidden, typeForbidden, "The access token does not grant the 'update' scope required to modify data.")

// apply performs one write inside t. p is the path relative to the service
// root; in changesets it may start with a Content-ID reference ($1).
func (h *handler) apply(ctx context.Context, t *tx, r *http.Request, method, p, rawQuery string, body []byte) (writeResult, error) {
	if pr, ok := principalFrom(ctx); !ok || !pr.can("update") {
		return writeResult{}, errForbidden
	}
	if strings.HasPrefix(p, "$") {
		ref, rest, _ := strings.Cut(p, "/")
		e := t.ids[ref[1:]]
		if e == nil {
			return writeResult{}, notFound("The Content-ID reference '%s' does not name an earlier request of this changeset.", ref)
		}
		p = e.odataID()
		if rest != "" {
			p += "/" + rest
		}
	}
	res, err := h.resolve(p)
	if err != nil {
		return writeResult{}, err
	}
	var obj map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return writeResult{}, invalid("The request body is not a JSON object: %v.", err)
		}
	}
	var e *entity
	if res.key != nil {
		if e = res.set.find(*res.key); e == nil {
			return writeResult{}, notFound("No %s with key %s exists.", res.set.name, *res.key)
		}
	}
	switch {
	case method == http.MethodPost && res.key == nil && res.action == "":
		return h.create(t, r, res.set, obj, rawQuery)
	case method == http.MethodPatch && e != nil && res.action == "":
		return writeResult{status: http.StatusNoContent, entity: e}, h.s.patch(t, e, obj)
	case method == http.MethodDelete && e != nil && res.action == "":
		return writeResult{status: http.StatusNoContent, entity: e}, h.s.delete(t, e)
	case method == http.MethodPost && e != nil && res.action == "ChangeState":
		return writeResult{status: http.StatusNoContent, entity: e}, h.s.changeState(t, e, obj)
	case method == http.MethodPost && e != nil && res.action == "MakeVoid":
		return writeResult{status: http.StatusNoContent, entity: e}, h.s.makeVoid(t, e, obj)
	}
	return writeResult{}, methodNotAllowed(method, p)
}

// editable refuses changes to documents past New (ERP.net: released
// documents are read-only; state moves only through ChangeState).
func editable(e *entity) error {
	root := e.root()
	if !root.set.document {
		return nil
	}
	if st := root.vals[root.set.byName["State"].idx]; st.n != 0 {
		return errorf(http.StatusInternalServerError, codeReadOnly, typeReadOnly,
			"The document %s is in state %s and cannot be modified; only documents in state New can be edited.", root.set.display(root), st.s)
	}
	if root.vals[root.set.byName["Void"].idx].n != 0 {
		return errorf(http.StatusInternalServerError, codeReadOnly, typeReadOnly, "The document %s is void and cannot be modified.", root.set.display(root))
	}
	return nil
}

// checkVersion compares an ObjectVersion given in the body with the aggregate root's.
func checkVersion(e *entity, obj map[string]json.RawMessage) error {
	raw, ok := obj["ObjectVersion"]
	if !ok {
		return nil
	}
	var v json.Number
	if err := json.Unmarshal(raw, &v); err != nil {
		return invalid("ObjectVersion must be a number.")
	}
	n, err := v.Int64()
	if err != nil {
		return invalid("ObjectVersion must be an integer.")
	}
	if root := e.root(); int64(root.version) != n {
		return errorf(http.StatusInternalServerError, codeConcurrency, typeConcurrency,
			"The object %s was changed by another user: ObjectVersion is %d, the request expected %d.", root.set.display(root), root.version, n)
	}
	return nil
}

// bump increments the aggregate root's ObjectVersion and moves its
// AggregateLastUpdateTimeUtc to now, undoably.
func bump(t *tx, e *entity) {
	root := e.root()
	root.version++
	t.onUndo(func() { root.version-- })
	touch(t, root)
}

// touch sets the AggregateLastUpdateTimeUtc of root to t.now, undoably.
func touch(t *tx, root *entity) {
	es := root.set
	if es.updated == nil {
		es.updated = map[*entity]float64{}
	}
	old, had := es.updated[root]
	es.updated[root] = float64(t.now.Unix())
	t.onUndo(func() {
		if had {
			es.updated[root] = old
		} else {
			delete(es.updated, root)
		}
	})
}

// snapshot records e's values so t can restore them (and the indexes).
func snapshot(t *tx, e *entity) {
	old := append([]value(nil), e.vals...)
	t.onUndo(func() {
		cur := e.vals
		e.vals = old
		for _, p := range e.set.indexed {
			if p.idx < 0 {
				continue // computed references never change through writes
			}
			if cur[p.idx].ref != old[p.idx].ref {
				e.set.reindexFrom(p, e, cur[p.idx])
			}
		}
	})
}

func (s *Store) patch(t *tx, e *entity, obj map[string]json.RawMessage) error {
	if err := editable(e); err != nil {
		return err
	}
	if err := checkVersion(e, obj); err != nil {
		return err
	}
	snapshot(t, e)
	for _, k := range sortedKeys(obj) {
		if k == "ObjectVersion" {
			continue
		}
		if err := s.assign(t, e, k, obj[k], false); err != nil {
			return err
		}
	}
	s.recalc(e)
	bump(t, e)
	return nil
}

// sortedKeys gives a deterministic order; ERP.net applies body properties in
// order, and a map does not keep it, so erpsim applies them by name.
func sortedKeys(obj map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// assign sets one body property on e; creating allows Lines and Id.
func (s *Store) assign(t *tx, e *entity, key string, raw json.RawMessage, creating bool) error {
	if strings.HasPrefix(key, "@") {
		return nil // annotations such as @odata.type
	}
	name, bind := strings.CutSuffix(key, "@odata.bind")
	p := e.set.byName[name]
	if p == nil {
		return invalid("The property '%s' does not exist on '%s'.", name, e.set.name)
	}
	if p.kind == kLines {
		if creating {
			return nil // handled by the caller
		}
		return invalid("Lines cannot be replaced through '%s'; write the lines themselves.", e.set.name)
	}
	if p.readOnly && !(creating && p.name == "Id") {
		return invalid("The property '%s' of '%s' is read-only.", name, e.set.name)
	}
	if p.name == "Id" {
		return nil // taken by create
	}
	if bind && p.kind != kRef {
		return invalid("'%s' is not a reference and cannot be bound.", name)
	}
	v, err := s.decodeValue(t, p, raw, bind)
	if err != nil {
		return err
	}
	old := e.vals[p.idx]
	e.vals[p.idx] = v
	if p.kind == kRef {
		e.set.reindexFrom(p, e, old)
	}
	return nil
}

// reindexFrom moves e in p's index after p changed from old.
func (es *entitySet) reindexFrom(p *prop, e *entity, old value) {
	if es.find(e.id) != e {
		return // not inserted yet: insert indexes it
	}
	if p.index != nil && e.vals[p.idx].ref != old.ref {
		es.reindex(p, e, old)
	}
}

// decodeValue converts a JSON body value for p.
func (s *Store) decodeValue(t *tx, p *prop, raw json.RawMessage, bind bool) (value, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return null, nil
	}
	bad := func(want string) (value, error) {
		return value{}, invalid("The property '%s' expects %s.", p.name, want)
	}
	switch p.kind {
	case kString:
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return bad("a string")
		}
		return strVal(str), nil
	case kInt, kDecimal:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return bad("a number")
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || p.kind == kInt && f != math.Trunc(f) {
			return bad("a valid number")
		}
		return numVal(f), nil
	case kBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return bad("true or false")
		}
		return boolVal(b), nil
	case kDate, kDateTime:
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return bad("a date string")
		}
		tm, ok := parseDateLit(str)
		if !ok {
			return bad("an ISO-8601 date")
		}
		if p.kind == kDate {
			tm = dayStart(tm)
		}
		return timeVal(tm), nil
	case kEnum:
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return bad("an enumeration member name")
		}
		r, ok := p.enum.rank(str)
		if !ok {
			return bad("one of " + strings.Join(p.enum.members, ", "))
		}
		return value{s: str, n: float64(r)}, nil
	case kML:
		var m map[string]string
		if json.Unmarshal(raw, &m) != nil {
			return bad(`a multi-language object such as {"EN":"...","BG":"..."}`)
		}
		var texts [len(languages)]string
		for k, v := range m {
			i := langIndex(k)
			if i < 0 {
				return bad("languages " + strings.Join(languages[:], ", "))
			}
			if strings.Contains(v, mlSep) {
				return bad("text without NUL characters")
			}
			texts[i] = v
		}
		return value{s: strings.Join(texts[:], mlSep)}, nil
	case kAmount, kQuantity:
		var q struct {
			Value    *json.Number
			Currency string
			Unit     string
		}
		if json.Unmarshal(raw, &q) != nil || q.Value == nil {
			return bad(fmt.Sprintf(`an object {"Value":n,"%s":"..."}`, map[kind]string{kAmount: "Currency", kQuantity: "Unit"}[p.kind]))
		}
		f, err := q.Value.Float64()
		if err != nil || math.IsInf(f, 0) {
			return bad("a valid Value")
		}
		code := q.Currency
		if p.kind == kQuantity {
			code = q.Unit
		}
		return value{n: f, s: code}, nil
	case kRef:
		var text string
		if bind {
			if json.Unmarshal(raw, &text) != nil {
				return bad(`"Set(guid)" in ` + p.name + "@odata.bind")
			}
		} else {
			var r struct {
				ID string `json:"@odata.id"`
			}
			if json.Unmarshal(raw, &r) != nil || r.ID == "" {
				return bad(`a reference {"@odata.id":"Set(guid)"}`)
			}
			text = r.ID
		}
		target, err := s.lookupRef(t, text)
		if err != nil {
			return value{}, err
		}
		if !compatible(s.sets[p.target], target.set) && !compatible(s.sets[p.target], target.set.base) {
			return value{}, invalid("The property '%s' refers to %s, not to %s.", p.name, p.target, target.set.name)
		}
		return refVal(target), nil
	}
	return bad("a writable value")
}

func langIndex(k string) int {
	for i, l := range languages {
		if strings.EqualFold(l, k) {
			return i
		}
	}
	return -1
}

// lookupRef finds the entity a body reference names: "Set(guid)" or a
// changeset Content-ID reference "$n".
func (s *Store) lookupRef(t *tx, text string) (*entity, error) {
	if strings.HasPrefix(text, "$") {
		if e := t.ids[text[1:]]; e != nil {
			return e, nil
		}
		return nil, invalid("The reference '%s' does not name an earlier request of this changeset.", text)
	}
	set, id, err := s.parseRef(text)
	if err != nil {
		return nil, invalid("%s", err.(*apiError).msg)
	}
	e := set.find(id)
	if e == nil {
		return nil, invalid("The referenced object %s does not exist.", text)
	}
	return e, nil
}

// create handles POST of a sales order (with Lines) or of a sales order line.
func (h *handler) create(t *tx, r *http.Request, set *entitySet, obj map[string]json.RawMessage, rawQuery string) (writeResult, error) {
	s := h.s
	var e *entity
	var err error
	switch set.name {
	case setSalesOrders:
		e, err = s.createOrder(t, obj)
	case setSalesOrderLines:
		e, err = s.createLineIn(t, obj)
	default:
		return writeResult{}, methodNotAllowed(http.MethodPost, set.name+" (erpsim creates sales orders and their lines)")
	}
	if err != nil {
		return writeResult{}, err
	}
	params, err := parseParams(rawQuery)
	if err != nil {
		return writeResult{}, err
	}
	q, err := s.parseQuery(set, params)
	if err != nil {
		return writeResult{}, err
	}
	if rawQuery == "" {
		// Clients read Id, DocumentNo and ObjectVersion from the created entity.
		q.sel = selection{def: true, names: []string{"Id", "ObjectVersion"}}
		if set.lines != nil {
			q.expand = []expandItem{{prop: set.lines, q: &query{set: s.sets[set.lines.target], top: -1, sel: selection{def: true, names: []string{"Id"}}}}}
		}
	}
	hdr := http.Header{}
	hdr.Set("Location", h.root(r)+e.odataID())
	return writeResult{status: http.StatusCreated, body: h.entityBody(r, set, e, q), entity: e, header: hdr}, nil
}

// newEntity allocates a row with the next deterministic Id of set.
func (s *Store) newEntity(t *tx, set *entitySet) *entity {
	set.seq++
	seq := set.seq
	t.onUndo(func() { set.seq = seq - 1 })
	e := &entity{set: set, id: fixture.UUID(set.name, seq), version: 1, vals: make([]value, set.slots)}
	for i := range e.vals {
		e.vals[i] = null
	}
	return e
}

func (s *Store) insert(t *tx, e *entity) {
	e.set.add(e)
	t.onUndo(func() { e.set.remove(e) })
	if e.parent == nil {
		touch(t, e)
	}
}

func (s *Store) firstByCode(set, code string) *entity {
	es := s.sets[set]
	p := es.byName["Code"]
	for _, e := range es.rows {
		if e.vals[p.idx].s == code {
			return e
		}
	}
	return nil
}

func (s *Store) createOrder(t *tx, obj map[string]json.RawMessage) (*entity, error) {
	set := s.sets[setSalesOrders]
	e := s.newEntity(t, set)
	if raw, ok := obj["Id"]; ok {
		var id string
		if json.Unmarshal(raw, &id) != nil {
			return nil, invalid("Id must be a GUID string.")
		}
		u, err := uuid.Parse(id)
		if err != nil || set.find(u) != nil {
			return nil, invalid("Id '%s' is not a new GUID.", id)
		}
		e.id = u
	}
	col := func(name string) *value { return &e.vals[set.byName[name].idx] }
	today := dayStart(t.now)
	*col("DocumentNo") = strVal(fmt.Sprintf("%07d", set.seq))
	*col("DocumentDate") = timeVal(today)
	*col("State") = enumVal(documentState, "New")
	*col("Void") = boolVal(false)
	*col("DocumentType") = refVal(s.firstByCode(setDocumentTypes, "SO"))
	*col("EnterpriseCompany") = refVal(s.sets[setEnterprise].rows[0])
	*col("CreationTime") = timeVal(t.now)
	for _, k := range sortedKeys(obj) {
		if err := s.assign(t, e, k, obj[k], true); err != nil {
			return nil, err
		}
	}
	cust := col("Customer").ref
	if cust == nil {
		return nil, invalid("A sales order needs a Customer.")
	}
	cs := cust.set
	if cust.vals[cs.byName["Active"].idx].n == 0 {
		return nil, invalid("The customer %s is not active; orders cannot be placed for it.", cs.display(cust))
	}
	party := cust.vals[cs.byName["Party"].idx]
	if to := col("ToParty"); to.isNull() {
		*to = party
	} else if to.ref != party.ref {
		return nil, invalid("The ToParty %s does not match the party of the customer %s.", to.ref.set.display(to.ref), cs.display(cust))
	}
	if st := col("ShipToCustomer"); !st.isNull() && st.ref.vals[cs.byName["Active"].idx].n == 0 {
		return nil, invalid("The ship-to customer %s is not active.", cs.display(st.ref))
	}
	if col("DocumentCurrency").isNull() {
		*col("DocumentCurrency") = cust.vals[cs.byName["DefaultCurrency"].idx]
	}
	if col("PaymentDueDate").isNull() {
		days := cust.vals[cs.byName["DefaultPaymentTermDays"].idx]
		if days.isNull() {
			days = numVal(0)
		}
		*col("PaymentDueDate") = value{n: col("DocumentDate").n + days.n*86400}
	}
	s.insert(t, e)
	if raw, ok := obj["Lines"]; ok {
		var lines []map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&lines); err != nil {
			return nil, invalid("Lines must be an array of line objects.")
		}
		for i, l := range lines {
			if _, err := s.createLine(t, e, l); err != nil {
				if ae, ok := err.(*apiError); ok {
					withLine := *ae
					withLine.msg = fmt.Sprintf("Line %d: %s", i+1, ae.msg)
					return nil, &withLine
				}
				return nil, err
			}
		}
	}
	return e, nil
}

// createLineIn handles POST Crm_Sales_SalesOrderLines: the body names its order.
func (s *Store) createLineIn(t *tx, obj map[string]json.RawMessage) (*entity, error) {
	p := s.sets[setSalesOrderLines].byName["SalesOrder"]
	raw, bind := obj["SalesOrder"], false
	if raw == nil {
		raw, bind = obj["SalesOrder@odata.bind"], true
	}
	if raw == nil {
		return nil, invalid("A sales order line needs its SalesOrder.")
	}
	v, err := s.decodeValue(t, p, raw, bind)
	if err != nil {
		return nil, err
	}
	if v.ref == nil {
		return nil, invalid("A sales order line needs its SalesOrder.")
	}
	order := v.ref
	if err := editable(order); err != nil {
		return nil, err
	}
	if err := checkVersion(order, obj); err != nil {
		return nil, err
	}
	delete(obj, "SalesOrder")
	delete(obj, "SalesOrder@odata.bind")
	delete(obj, "ObjectVersion")
	l, err := s.createLine(t, order, obj)
	if err != nil {
		return nil, err
	}
	bump(t, order)
	return l, nil
}

// createLine adds a line to a new order, defaulting what ERP.net's business
// rules would: description, unit, base quantity, price and amount.
func (s *Store) createLine(t *tx, order *entity, obj map[string]json.RawMessage) (*entity, error) {
	set := s.sets[setSalesOrderLines]
	l := s.newEntity(t, set)
	l.parent = order
	col := func(name string) *value { return &l.vals[set.byName[name].idx] }
	*col("SalesOrder") = refVal(order)
	last := 0.0
	if n := len(order.lines); n > 0 {
		last = order.lines[n-1].vals[set.byName["LineNo"].idx].n
	}
	*col("LineNo") = numVal(last + 10)
	for _, k := range sortedKeys(obj) {
		if k == "SalesOrder" || k == "SalesOrder@odata.bind" {
			return nil, invalid("A line of a new order must not name another SalesOrder.")
		}
		if err := s.assign(t, l, k, obj[k], false); err != nil {
			return nil, err
		}
	}
	prod := col("Product").ref
	if prod == nil {
		return nil, invalid("A sales order line needs a Product.")
	}
	ps := prod.set
	if prod.vals[ps.byName["Active"].idx].n == 0 {
		return nil, invalid("The product %s is not active and cannot be sold.", ps.display(prod))
	}
	unit := prod.vals[ps.byName["MeasurementUnit"].idx].ref
	unitCode := unit.vals[unit.set.byName["Code"].idx].s
	if q := col("Quantity"); q.isNull() || q.n <= 0 {
		return nil, invalid("A sales order line needs a positive Quantity.")
	} else if q.s == "" {
		q.s = unitCode
	}
	if col("QuantityUnit").isNull() {
		*col("QuantityUnit") = refVal(unit)
	}
	if col("ProductDescription").isNull() {
		*col("ProductDescription") = prod.vals[ps.byName["Name"].idx]
	}
	cur := order.vals[order.set.byName["DocumentCurrency"].idx].ref
	curCode := cur.vals[cur.set.byName["CurrencySign"].idx].s
	if col("UnitPrice").isNull() {
		price := prod.vals[ps.byName["StandardPricePerLot"].idx]
		n := price.n
		if price.s != curCode && curCode == "EUR" {
			n = round2(n / eurRate)
		}
		*col("UnitPrice") = amountVal(n, curCode)
	} else if u := col("UnitPrice"); u.s == "" {
		u.s = curCode
	} else if u.s != curCode {
		return nil, invalid("UnitPrice is in %s but the order's currency is %s.", u.s, curCode)
	}
	if col("LineCustomDiscountPercent").isNull() {
		*col("LineCustomDiscountPercent") = numVal(0)
	}
	s.recalc(l)
	s.insert(t, l)
	order.lines = append(order.lines, l)
	t.onUndo(func() { order.lines = removeLine(order.lines, l) })
	return l, nil
}

func removeLine(lines []*entity, l *entity) []*entity {
	for i, x := range lines {
		if x == l {
			return append(lines[:i:i], lines[i+1:]...)
		}
	}
	return lines
}

// recalc derives a sales order line's amount.
func (s *Store) recalc(e *entity) {
	if e.set.name != setSalesOrderLines {
		return
	}
	set := e.set
	q, price, disc := e.vals[set.byName["Quantity"].idx], e.vals[set.byName["UnitPrice"].idx], e.vals[set.byName["LineCustomDiscountPercent"].idx]
	if q.isNull() || price.isNull() {
		return
	}
	d := 0.0
	if !disc.isNull() {
		d = disc.n
	}
	e.vals[set.byName["LineAmount"].idx] = amountVal(round2(q.n*price.n*(1-d/100)), price.s)
}

func (s *Store) delete(t *tx, e *entity) error {
	if e.set.name != setSalesOrders && e.set.name != setSalesOrderLines {
		return methodNotAllowed(http.MethodDelete, e.set.name+" (erpsim deletes sales orders and their lines)")
	}
	if err := editable(e); err != nil {
		return err
	}
	if e.parent != nil {
		order := e.parent
		lines := order.lines
		order.lines = removeLine(order.lines, e)
		t.onUndo(func() { order.lines = lines })
		e.set.remove(e)
		t.onUndo(func() { e.set.add(e) })
		bump(t, order)
		return nil
	}
	for _, l := range e.lines {
		l.set.remove(l)
		t.onUndo(func() { l.set.add(l) })
	}
	e.set.remove(e)
	t.onUndo(func() { e.set.add(e) })
	return nil
}

// changeState is the bound action Set(id)/ChangeState {"newState":"Released"}.
// Transition rules (erpsim's reading of ERP.net's document life cycle): the
// state must change; Adjustment is reached only by adjustment documents, not
// by ChangeState; a document below Released may move to any state up to
// Released (planning back and forth included) but must be Released before it
// can be Completed or Closed; from Released on, states only move forward.
func (s *Store) changeState(t *tx, e *entity, obj map[string]json.RawMessage) error {
	if !e.set.document {
		return methodNotAllowed(http.MethodPost, e.set.name+"/ChangeState")
	}
	var state string
	if raw, ok := obj["newState"]; !ok || json.Unmarshal(raw, &state) != nil {
		return invalid(`ChangeState needs {"newState":"<DocumentState>"}.`)
	}
	r, ok := documentState.rank(state)
	if !ok {
		return invalid("'%s' is not a document state (states: %s).", state, strings.Join(documentState.members, ", "))
	}
	p := e.set.byName["State"]
	if e.vals[e.set.byName["Void"].idx].n != 0 {
		return errorf(http.StatusInternalServerError, codeReadOnly, typeReadOnly, "The document %s is void; its state cannot change.", e.set.display(e))
	}
	old := e.vals[p.idx]
	released, _ := documentState.rank("Released")
	adjustment, _ := documentState.rank("Adjustment")
	from := int(old.n)
	switch {
	case r == from:
		return errorf(http.StatusInternalServerError, codeStateTransition, typeStateTransition, "The document %s is already in state %s.", e.set.display(e), state)
	case r == adjustment:
		return errorf(http.StatusInternalServerError, codeStateTransition, typeStateTransition, "The state Adjustment is set by adjustment documents, not by ChangeState.")
	case from < released && r > released:
		return errorf(http.StatusInternalServerError, codeStateTransition, typeStateTransition, "The document %s is in state %s; it must be Released before it becomes %s.", e.set.display(e), old.s, state)
	case from >= released && r < from:
		return errorf(http.StatusInternalServerError, codeStateTransition, typeStateTransition, "The document %s is in state %s; a released document cannot return to %s.", e.set.display(e), old.s, state)
	}
	e.vals[p.idx] = value{s: state, n: float64(r)}
	t.onUndo(func() { e.vals[p.idx] = old })
	bump(t, e)
	return nil
}

// makeVoid is the bound action Set(id)/MakeVoid {"reason":"...","voidType":"..."}:
// it annuls a document that has been planned or released (a document in state
// New is deleted instead). voidType is accepted as given.
func (s *Store) makeVoid(t *tx, e *entity, obj map[string]json.RawMessage) error {
	if !e.set.document {
		return methodNotAllowed(http.MethodPost, e.set.name+"/MakeVoid")
	}
	var reason string
	if raw, ok := obj["reason"]; !ok || json.Unmarshal(raw, &reason) != nil || strings.TrimSpace(reason) == "" {
		return invalid(`MakeVoid needs {"reason":"<why>"}.`)
	}
	if len(reason) > 254 {
		return invalid("The void reason is longer than 254 characters.")
	}
	if e.vals[e.set.byName["Void"].idx].n != 0 {
		return errorf(http.StatusInternalServerError, codeReadOnly, typeReadOnly, "The document %s is already void.", e.set.display(e))
	}
	if e.vals[e.set.byName["State"].idx].n == 0 {
		return errorf(http.StatusInternalServerError, codeStateTransition, typeStateTransition,
			"The document %s is in state New; delete it instead of voiding it.", e.set.display(e))
	}
	snapshot(t, e)
	e.vals[e.set.byName["Void"].idx] = boolVal(true)
	e.vals[e.set.byName["VoidReason"].idx] = strVal(reason)
	e.vals[e.set.byName["VoidTime"].idx] = timeVal(t.now)
	bump(t, e)
	return nil
}
