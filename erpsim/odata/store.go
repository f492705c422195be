package odata

import (
	"sync"
	"time"
)

// Store is the in-memory database of the emulated instance. It is safe for
// concurrent use: reads share a read lock, writes (and whole $batch
// changesets) take the write lock.
type Store struct {
	mu   sync.RWMutex
	now  time.Time
	sets map[string]*entitySet
}

// NewStore builds the deterministic demo data. scale multiplies the number
// of sales orders (1 → 1,000; 100 → 100,000); dates are spread over the two
// years before now's date.
func NewStore(scale int, now time.Time) *Store {
	if scale < 1 {
		scale = 1
	}
	s := &Store{now: now, sets: map[string]*entitySet{}}
	return s
}

type entitySet struct{ name string }
