package odata

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// kind is the EDM-level type of a property as the Domain API exposes it.
type kind uint8

const (
	kString kind = iota
	kInt
	kDecimal
	kBool
	kDate     // date only, serialized as midnight UTC
	kDateTime // instant, serialized as ISO-8601 UTC
	kEnum     // serialized as the member name; ordered (State ge 'Released')
	kML       // multi-language string {"EN":..,"BG":..}
	kAmount   // {"Value":n,"Currency":"BGN"}
	kQuantity // {"Value":n,"Unit":"pcs"}
	kRef      // reference {"@odata.id":"Set(guid)"}
	kGUID     // the Id key
	kLines    // child collection
)

// languages are the keys of multi-language strings, in storage order.
// ERP.net's captured payloads use upper-case keys.
var languages = [...]string{"EN", "BG"}

// mlSep separates the languages inside a stored multi-language value; it
// cannot occur in user text (writes reject it).
const mlSep = "\x00"

// value is one stored property value. It is deliberately small (32 bytes)
// because scale 100 holds over a million rows:
//   - strings, enum names, ML texts (languages joined by mlSep) and the
//     currency/unit code of amounts and quantities live in s;
//   - numbers, bools (0/1), dates (Unix seconds), enum ranks and the numeric
//     part of amounts and quantities live in n;
//   - references point at the target row;
//   - null is n = NaN.
type value struct {
	s   string
	n   float64
	ref *entity
}

var null = value{n: math.NaN()}

func (v value) isNull() bool { return v.n != v.n }

func strVal(s string) value               { return value{s: s} }
func numVal(n float64) value              { return value{n: n} }
func boolVal(b bool) value                { return value{n: b2f(b)} }
func timeVal(t time.Time) value           { return value{n: float64(t.Unix())} }
func refVal(e *entity) value              { return value{ref: e} }
func amountVal(n float64, c string) value { return value{n: n, s: c} }
func mlVal(en, bg string) value           { return value{s: en + mlSep + bg} }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// mlText splits a stored multi-language value into its languages.
func mlText(s string) [len(languages)]string {
	var out [len(languages)]string
	for i := range out {
		j := strings.Index(s, mlSep)
		if j < 0 {
			out[i] = s
			break
		}
		out[i], s = s[:j], s[j+1:]
	}
	return out
}

// enumType is an ERP.net enumeration; members are ordered as declared.
type enumType struct {
	name    string
	members []string
}

func (e *enumType) rank(name string) (int, bool) {
	for i, m := range e.members {
		if m == name {
			return i, true
		}
	}
	return 0, false
}

var (
	documentState = &enumType{"DocumentState", []string{"New", "Adjustment", "Planned", "FirmPlanned", "Released", "Completed", "Closed"}}
	partyType     = &enumType{"PartyType", []string{"Company", "CompanyLocation", "Person", "Store", "CompanyDivision"}}
	gender        = &enumType{"Gender", []string{"Male", "Female"}}
	userType      = &enumType{"UserType", []string{"InternalUser", "ExternalCommunityUser", "SystemUserNoLogin"}}
	accessRole    = &enumType{"ExternalAccessRole", []string{"Basic", "Orders", "OrdersWithPrices", "OrdersBilling", "Admin", "Owner"}}
	mechanismType = &enumType{"ContactMechanismType", []string{"Address", "Mail", "Phone", "Fax", "Web"}}
)

// prop is a property of an entity set.
type prop struct {
	name     string
	kind     kind
	idx      int                     // slot in entity.vals; -1 when computed
	target   string                  // kRef: declared target set; kLines: child set
	via      string                  // kLines: the child's reference to its parent
	enum     *enumType               // kEnum
	get      func(e *entity) value   // computed properties
	extra    bool                    // not in the default $select (Id, ObjectVersion)
	readOnly bool                    // refused in PATCH/POST bodies
	indexed  bool                    // kRef: rows are indexed by target for fast filters
	hidden   bool                    // an internal slot, not a property clients see
	index    map[uuid.UUID][]*entity // indexed refs: target Id → rows, sorted by Id
}

// entity is one row. Rows of derived sets (persons, companies) are also rows
// of their base set (parties) with the same Id.
type entity struct {
	set     *entitySet // concrete set: names the @odata.id
	id      uuid.UUID
	version int     // ObjectVersion of an aggregate root
	parent  *entity // aggregate root of a child row (order of a line)
	vals    []value
	lines   []*entity // child collection, in LineNo order
}

// root is the aggregate root that owns ObjectVersion and editability.
func (e *entity) root() *entity {
	if e.parent != nil {
		return e.parent
	}
	return e
}

func (e *entity) odataID() string { return e.set.name + "(" + e.id.String() + ")" }

// appendID appends id in its canonical lower-case form without allocating.
func appendID(b []byte, id uuid.UUID) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return b
}

// entitySet is a table with its schema and indexes.
type entitySet struct {
	name     string
	typeName string
	props    []*prop
	byName   map[string]*prop
	slots    int
	rows     []*entity // sorted by Id: the default order and the keyset of $skiptoken
	indexed  []*prop   // indexed references (prop.index)
	base     *entitySet
	derived  []*entitySet
	view     bool                   // views page with $skip, not keyset
	display  func(e *entity) string // DisplayText
	lines    *prop                  // child collection, if any
	parent   *prop                  // child sets: the reference to the aggregate root
	source   *prop                  // invoice/shipment lines: hidden reference to the mirrored order line
	document bool                   // has the General_Documents_Documents fields
	seq      int                    // last row number used for Ids and DocumentNo
	// updated holds AggregateLastUpdateTimeUtc (Unix seconds) of the roots changed since start-up
	updated map[*entity]float64
}

func (es *entitySet) prop(name string) *prop { return es.byName[name] }

// get returns the value of p on e (stored or computed).
func (e *entity) get(p *prop) value {
	if p.get != nil {
		return p.get(e)
	}
	return e.vals[p.idx]
}

// add inserts a row keeping rows and indexes sorted by Id.
func (es *entitySet) add(e *entity) {
	es.rows = insertSorted(es.rows, e)
	for _, p := range es.indexed {
		if v := e.get(p); v.ref != nil {
			p.index[v.ref.id] = insertSorted(p.index[v.ref.id], e)
		}
	}
	if es.base != nil {
		es.base.add(e)
	}
}

// remove deletes a row from the set and its indexes.
func (es *entitySet) remove(e *entity) {
	es.rows = removeSorted(es.rows, e)
	for _, p := range es.indexed {
		if v := e.get(p); v.ref != nil {
			p.index[v.ref.id] = removeSorted(p.index[v.ref.id], e)
		}
	}
	if es.base != nil {
		es.base.remove(e)
	}
}

// reindex moves e between index lists after a reference changed from old.
func (es *entitySet) reindex(p *prop, e *entity, old value) {
	idx := p.index
	if idx == nil {
		return
	}
	if old.ref != nil {
		idx[old.ref.id] = removeSorted(idx[old.ref.id], e)
	}
	if v := e.get(p); v.ref != nil {
		idx[v.ref.id] = insertSorted(idx[v.ref.id], e)
	}
}

func idLess(a, b uuid.UUID) bool { return cmpID(a, b) < 0 }

// cmpID orders Ids like their canonical strings (byte order), comparing
// 64-bit halves: sorting two million rows at scale 100 is start-up time.
func cmpID(a, b uuid.UUID) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// find returns the row with id by binary search (rows are kept in Id order).
func (es *entitySet) find(id uuid.UUID) *entity {
	if i := searchID(es.rows, id); i < len(es.rows) && es.rows[i].id == id {
		return es.rows[i]
	}
	return nil
}

// searchID returns the position of the first row whose Id is >= id.
func searchID(rows []*entity, id uuid.UUID) int {
	return sort.Search(len(rows), func(i int) bool { return !idLess(rows[i].id, id) })
}

func insertSorted(rows []*entity, e *entity) []*entity {
	// Generation appends in arbitrary order and sorts once; writes insert.
	i := searchID(rows, e.id)
	rows = append(rows, nil)
	copy(rows[i+1:], rows[i:])
	rows[i] = e
	return rows
}

func removeSorted(rows []*entity, e *entity) []*entity {
	i := searchID(rows, e.id)
	if i < len(rows) && rows[i] == e {
		rows = append(rows[:i], rows[i+1:]...)
	}
	return rows
}

func sortByID(rows []*entity) {
	slices.SortFunc(rows, func(a, b *entity) int { return cmpID(a.id, b.id) })
}
