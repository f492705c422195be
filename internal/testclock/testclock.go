// Package testclock is a clock for store contract tests: the real time plus an
// offset the test moves forward, so stores that also expire by Redis's own
// clock (which the test cannot move) still see sensible times.
package testclock

import (
	"sync"
	"time"
)

// Offset is the real time plus an offset. The zero value is the real time.
type Offset struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the clock's time.
func (c *Offset) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Offset) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
