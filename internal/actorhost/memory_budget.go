package actorhost

import (
	"sync"
	"sync/atomic"
)

// MemoryBudget is the memory the actors of one host may take together, in
// bytes. It is enforced where memory is really taken: every linear-memory
// growth (memory.grow, and the declared minimum at instantiation) must
// reserve its pages here first, and a grow the budget can't cover returns
// -1 to the guest, which then fails alone (reason MemoryLimit, naming the
// host's budget) while the other actors run on. An instance's own heap and
// the compiled code are reserved here too, so that Used is what the actors
// hold, not only their linear memories.
//
// The limit may change at any time (the host lowers it when the memory it
// needs for itself grows); what is already reserved stays reserved, and new
// reservations fail until Used is under the limit again. A nil budget is
// unlimited. It is safe for concurrent use.
type MemoryBudget struct {
	limit atomic.Uint64
	used  atomic.Int64
	// refusals counts the reservations the budget refused.
	refusals atomic.Uint64

	mu    sync.Mutex
	freed chan struct{} // closed at the next Release
}

// NewMemoryBudget returns a budget of limit bytes.
func NewMemoryBudget(limit uint64) *MemoryBudget {
	b := &MemoryBudget{freed: make(chan struct{})}
	b.limit.Store(limit)
	return b
}

// Limit is the budget's size in bytes; 0 for a nil (unlimited) budget.
func (b *MemoryBudget) Limit() uint64 {
	if b == nil {
		return 0
	}
	return b.limit.Load()
}

// SetLimit changes the budget's size.
func (b *MemoryBudget) SetLimit(limit uint64) {
	if b == nil {
		return
	}
	if limit > b.limit.Swap(limit) {
		b.notify()
	}
}

// Used is what the actors hold now, in bytes.
func (b *MemoryBudget) Used() uint64 {
	if b == nil {
		return 0
	}
	return uint64(max(b.used.Load(), 0))
}

// Available is what is left under the limit; 0 when Used is over it.
func (b *MemoryBudget) Available() uint64 {
	if b == nil {
		return 0
	}
	limit, used := b.Limit(), b.Used()
	if used >= limit {
		return 0
	}
	return limit - used
}

// Refusals counts the reservations the budget refused so far.
func (b *MemoryBudget) Refusals() uint64 {
	if b == nil {
		return 0
	}
	return b.refusals.Load()
}

// TryReserve reserves n bytes when Used stays within the limit, and
// reports whether it did.
func (b *MemoryBudget) TryReserve(n uint64) bool {
	if b == nil || n == 0 {
		return true
	}
	for {
		used := b.used.Load()
		next := used + int64(n)
		if next < used || uint64(next) > b.limit.Load() {
			b.refusals.Add(1)
			return false
		}
		if b.used.CompareAndSwap(used, next) {
			return true
		}
	}
}

// Reserve counts n bytes that are taken already (a chain's buffer, a
// state), whatever the limit: the next TryReserve sees them.
func (b *MemoryBudget) Reserve(n uint64) {
	if b == nil || n == 0 {
		return
	}
	b.used.Add(int64(n))
}

// Release gives back n bytes reserved before, and wakes whoever waits in
// Freed.
func (b *MemoryBudget) Release(n uint64) {
	if b == nil || n == 0 {
		return
	}
	b.used.Add(-int64(n))
	b.notify()
}

// Freed returns a channel closed at the next Release or raise of the
// limit: a start waiting for memory looks again then.
func (b *MemoryBudget) Freed() <-chan struct{} {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.freed
}

func (b *MemoryBudget) notify() {
	b.mu.Lock()
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// adjust moves a reservation of *held bytes to n, whatever the limit (the
// memory is taken already), and records the new figure in *held.
func (b *MemoryBudget) adjust(held *atomic.Uint64, n uint64) {
	old := held.Swap(n)
	switch {
	case n > old:
		b.Reserve(n - old)
	case n < old:
		b.Release(old - n)
	}
}
