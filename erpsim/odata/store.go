package odata

import (
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// Store is the in-memory database of the emulated instance. It is safe for
// concurrent use: reads share a read lock, writes (and whole $batch
// changesets) take the write lock.
type Store struct {
	mu    sync.RWMutex
	today time.Time // midnight UTC of now's date: demo dates count back from it
	epoch time.Time // CreationTime of reference data
	sets  map[string]*entitySet
	order []*entitySet // declaration order, for $metadata

	rowSlab []entity // generation-time allocation slabs (see newRow)
	valSlab []value
}

// NewStore builds the deterministic demo data. scale multiplies the number
// of sales orders (1 → 1,000; 100 → 100,000); dates are spread over the two
// years before now's date, so equal (scale, date) give equal stores.
func NewStore(scale int, now time.Time) *Store { return NewStoreWithUsers(scale, 0, now) }

// NewStoreWithUsers is NewStore plus the first users generated portal users
// of package fixture (fixture.GeneratedUser), each with a customer of their
// own and 24×scale sales orders with lines, most of them invoiced and
// shipped. The demo rows are the same as NewStore's.
func NewStoreWithUsers(scale, users int, now time.Time) *Store {
	if scale < 1 {
		scale = 1
	}
	today := dayStart(now)
	s := &Store{today: today, epoch: today.AddDate(-3, 0, 0), sets: map[string]*entitySet{}}
	s.defineSchema()
	g := newGenerator(s, scale)
	g.portalUsers = min(max(users, 0), fixture.MaxGeneratedUsers)
	g.run()
	s.finish()
	s.rowSlab, s.valSlab = nil, nil
	return s
}

// newRow creates a row of es with the deterministic Id of row n, appended
// unsorted; finish sorts and indexes everything once.
func (s *Store) newRow(es *entitySet, n int, id uuid.UUID) *entity {
	// Rows and their values are carved from slabs: scale 100 creates about two
	// million rows, and one allocation each would dominate start-up.
	if len(s.rowSlab) == 0 {
		s.rowSlab = make([]entity, 4096)
	}
	e := &s.rowSlab[0]
	s.rowSlab = s.rowSlab[1:]
	if len(s.valSlab) < es.slots {
		s.valSlab = make([]value, 1<<16)
	}
	*e = entity{set: es, id: id, version: 1, vals: s.valSlab[:es.slots:es.slots]}
	s.valSlab = s.valSlab[es.slots:]
	for i := range e.vals {
		e.vals[i].n = null.n // the slab is zeroed; setting only n avoids write barriers
	}
	es.rows = append(es.rows, e)
	if n > es.seq {
		es.seq = n
	}
	return e
}

// finish sorts every set by Id, fills the base sets and builds the indexes.
func (s *Store) finish() {
	for _, es := range s.order {
		for _, d := range es.derived {
			es.rows = append(es.rows, d.rows...)
		}
	}
	// Sets are independent here (each owns its rows and its index maps), so
	// the biggest ones sort in parallel: at scale 100 this is a third of start-up.
	var wg sync.WaitGroup
	for _, es := range s.order {
		wg.Go(func() { sortAndIndex(es) })
	}
	wg.Wait()
}

// maxIndexed bounds the indexed references of one set.
const maxIndexed = 4

// sortAndIndex sorts es.rows by Id and builds its reference indexes with
// groups in Id order. Rows are read once, in generation (memory) order, into
// an array of (Id, row, targets) that is sorted and then scanned
// sequentially: following row pointers in Id order costs a cache miss per
// row, which dominated start-up at scale 100.
func sortAndIndex(es *entitySet) {
	if len(es.indexed) > maxIndexed {
		panic("odata: too many indexed references on " + es.name)
	}
	type keyed struct {
		id      uuid.UUID
		e       *entity
		targets [maxIndexed]*entity
	}
	ks := make([]keyed, len(es.rows))
	for i, e := range es.rows {
		ks[i].id, ks[i].e = e.id, e
		for j, p := range es.indexed {
			ks[i].targets[j] = e.get(p).ref
		}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return cmpID(a.id, b.id) })
	for i := range ks {
		es.rows[i] = ks[i].e
	}
	for j, p := range es.indexed {
		counts := map[*entity]int{}
		n := 0
		for i := range ks {
			if t := ks[i].targets[j]; t != nil {
				counts[t]++
				n++
			}
		}
		// The groups share one backing array, capped so a later insert
		// copies instead of overwriting the neighbouring group.
		backing := make([]*entity, n)
		next := make(map[*entity]int, len(counts))
		off := 0
		for t, c := range counts {
			next[t] = off
			p.index[t.id] = backing[off : off+c : off+c]
			off += c
		}
		for i := range ks {
			if t := ks[i].targets[j]; t != nil {
				backing[next[t]] = ks[i].e
				next[t]++
			}
		}
	}
}

// RenameProduct sets the English name of product id as an edit in ERP.net
// would: ObjectVersion and AggregateLastUpdateTimeUtc move with it.
func (s *Store) RenameProduct(id uuid.UUID, name string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sets[setProducts].find(id)
	if e == nil {
		return notFound("No %s with key %s exists.", setProducts, id)
	}
	p := e.set.byName["Name"]
	t := mlText(e.vals[p.idx].s)
	e.vals[p.idx] = mlVal(name, t[1])
	bump(&tx{now: now}, e)
	return nil
}

// AddProduct adds a product to the catalogue as a user creating one in
// ERP.net would: a copy of the first product's group, unit and price with
// its own Id, part number and English name, and an AggregateLastUpdateTimeUtc
// of now. It returns the new Id.
func (s *Store) AddProduct(partNumber, name string, now time.Time) (uuid.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.sets[setProducts]
	if len(es.rows) == 0 {
		return uuid.Nil, notFound("No %s to copy.", setProducts)
	}
	pn := es.byName["PartNumber"]
	for _, e := range es.rows {
		if e.vals[pn.idx].s == partNumber {
			return uuid.Nil, invalid("A product with PartNumber %s exists.", partNumber)
		}
	}
	t := &tx{now: now}
	e := s.newEntity(t, es)
	copy(e.vals, es.rows[0].vals)
	e.vals[pn.idx] = strVal(partNumber)
	e.vals[es.byName["Name"].idx] = mlVal(name, name)
	e.vals[es.byName["Description"].idx] = null
	s.insert(t, e)
	return e.id, nil
}

// DeleteProduct removes product id from the catalogue, as deleting it in
// ERP.net would. A product that any row still refers to (an order, invoice
// or shipment line, a stock balance) is refused: erpsim's stand-in for the
// referential checks ERP.net makes on delete.
func (s *Store) DeleteProduct(id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.sets[setProducts]
	e := es.find(id)
	if e == nil {
		return notFound("No %s with key %s exists.", setProducts, id)
	}
	for _, other := range s.order {
		if other.base != nil {
			continue // derived rows are also rows of their base set
		}
		for _, r := range other.rows {
			for _, v := range r.vals {
				if v.ref == e {
					return invalid("%s %s is referenced by %s and cannot be deleted.", setProducts, id, r.odataID())
				}
			}
		}
	}
	es.remove(e)
	delete(es.updated, e)
	return nil
}

// AdjustStock adds delta to the first current balance of product id (stock
// is a view: it has no aggregate timestamp) and returns the new quantity.
func (s *Store) AdjustStock(id uuid.UUID, delta float64) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.sets[setBalances]
	rows := es.byName["Product"].index[id]
	if len(rows) == 0 {
		return 0, notFound("Product %s has no current balance.", id)
	}
	q := es.byName["QuantityBase"]
	v := rows[0].vals[q.idx]
	v.n = max(0, v.n+delta)
	rows[0].vals[q.idx] = v
	return v.n, nil
}

// ProductIDs lists the products' Ids in Id order.
func (s *Store) ProductIDs() []uuid.UUID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rows := s.sets[setProducts].rows
	out := make([]uuid.UUID, len(rows))
	for i, e := range rows {
		out[i] = e.id
	}
	return out
}

// DropAggregateTimestamps removes AggregateLastUpdateTimeUtc from every set,
// as on instances older than ERP.net v26.2. Call it before serving.
func (s *Store) DropAggregateTimestamps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, es := range s.order {
		es.dropProp(aggregateUpdated)
	}
}
