package odata

import (
	"sync"
	"time"

	"github.com/google/uuid"
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
}

// NewStore builds the deterministic demo data. scale multiplies the number
// of sales orders (1 → 1,000; 100 → 100,000); dates are spread over the two
// years before now's date, so equal (scale, date) give equal stores.
func NewStore(scale int, now time.Time) *Store {
	if scale < 1 {
		scale = 1
	}
	today := dayStart(now)
	s := &Store{today: today, epoch: today.AddDate(-3, 0, 0), sets: map[string]*entitySet{}}
	s.defineSchema()
	newGenerator(s, scale).run()
	s.finish()
	return s
}

// newRow creates a row of es with the deterministic Id of row n, appended
// unsorted; finish sorts and indexes everything once.
func (s *Store) newRow(es *entitySet, n int, id string) *entity {
	e := &entity{set: es, id: uuid.MustParse(id), idStr: id, version: 1, vals: make([]value, es.slots)}
	for i := range e.vals {
		e.vals[i] = null
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
	for _, es := range s.order {
		sortByID(es.rows)
		for _, e := range es.rows {
			es.byID[e.id] = e
			for p, idx := range es.index {
				if v := e.vals[p.idx]; v.ref != nil {
					idx[v.ref.id] = append(idx[v.ref.id], e)
				}
			}
		}
	}
}
