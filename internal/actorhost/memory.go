package actorhost

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// wasmPageSize is the size of one page of WebAssembly linear memory.
const wasmPageSize = limits.PageBytes

// memoryLimiter enforces one actor's linear-memory limit, and the host's
// budget shared by every actor.
//
// wazero's RuntimeConfig.WithMemoryLimitPages is per runtime, and every actor
// shares the one runtime, so the per-actor limit is enforced by a
// experimental.MemoryAllocator handed to each instantiation through its
// context: the allocator never hands out more than limit bytes, so a
// memory.grow past the limit returns -1 to the guest (as the spec requires
// when growth fails) and the guest decides whether to trap. A module whose
// declared minimum already exceeds the limit is rejected before
// instantiation (wazero cannot fail the initial allocation gracefully).
//
// Every byte the guest may use (the committed memory, not the reservation
// of address space) is reserved in the host's MemoryBudget before the grow
// returns: a grow the budget can't cover returns -1 as well, and is
// recorded so that the failure that follows names the host's budget. The
// declared minimum is reserved before instantiation (prereserve), so an
// instance is never built on memory the budget does not have.
//
// One part is counted by measurement instead: the pages of a shared
// initial memory image (memory_image.go). They are in RAM once for every
// instance of the module, and the engine charges that copy once, with the
// compiled code; an instance is charged only the image pages it wrote (the
// kernel copied them for it), which recount measures. Its credit is the
// rest of the image. Between two measurements an instance may write more
// of its image than it was charged for, at most the image's size: the
// engine's RefreshMemory stops the actors whose writes put the host over
// its budget (overBudget).
//
// On unix the memory is a PROT_NONE reservation of the whole limit that is
// made readable and writable as it grows: growth never copies, and an idle
// actor costs only the OS pages it touched, not its declared minimum.
type memoryLimiter struct {
	limit  uint64 // bytes
	budget *MemoryBudget
	// refused records the largest size, in bytes, that a grow asked for and
	// was denied, so a trap that follows can be reported as MemoryLimit
	// rather than a bare trap; byBudget says whether the host's budget,
	// not the actor's limit, denied it, and budgetUsed/budgetLimit what the
	// budget held then.
	refused                 atomic.Uint64
	byBudget                atomic.Bool
	budgetUsed, budgetLimit atomic.Uint64
	// mem is the live linear memory, for accounting; nil before Allocate.
	mem atomic.Pointer[linearMemory]

	// mu guards reserved and credit against the accounting's reads
	// racing a grow.
	mu sync.Mutex
	// reserved is what this memory holds in the budget: its committed
	// bytes less its credit, or the prereservation before the instance
	// takes it.
	reserved uint64
	// credit is the part of the committed memory not charged to it: the
	// pages of its shared image it has not written, as last measured
	// (all of them before it ran). 0 without a shared image.
	credit uint64
	// imageWritten is the image's bytes it had written at the last
	// measurement.
	imageWritten uint64
	// committed mirrors the backing's committed size, for accounting.
	committed atomic.Uint64

	// image is the module's initial memory, laid under the memory the
	// allocator builds (memory_image.go); nil when wazero applies the
	// module's data segments itself. Set before instantiation.
	image *memImage
}

// liveMappings counts the linear memories mapped and not yet freed, so
// tests can tell that every path releases them.
var liveMappings atomic.Int64

// linearMemory is the allocator's answer; the platform decides the backing.
type linearMemory struct {
	backing experimental.LinearMemory
	// resident reports the bytes of this memory held in RAM, when the
	// platform can tell, otherwise the committed length; and of those, the
	// ones still shared with the module's other instances (its image's
	// pages that this one read and never wrote).
	resident func() (resident, shared uint64)
	// imageMapped says the module's image is mapped (shared), not copied;
	// imageWritten then counts the image's bytes this memory wrote (its
	// own copies of them); ok is false when that can't be read.
	imageMapped  bool
	imageWritten func() (written uint64, ok bool)
}

// newMemoryLimiter returns the limiter of a memory of at most pages,
// laid over image (nil: none), charged to budget.
func newMemoryLimiter(pages uint32, budget *MemoryBudget, image *memImage) *memoryLimiter {
	l := &memoryLimiter{limit: uint64(pages) * wasmPageSize, budget: budget, image: image}
	if image != nil && image.shared() {
		// Expected to be mapped: Allocate takes the credit back if not.
		l.credit = image.size
	}
	return l
}

// Allocate implements experimental.MemoryAllocator.
func (l *memoryLimiter) Allocate(capBytes, maxBytes uint64) experimental.LinearMemory {
	limit := min(l.limit, maxBytes)
	lm := allocateLinearMemory(limit, capBytes, l)
	if !lm.imageMapped {
		// Copied, or no image: every committed page is its own.
		l.mu.Lock()
		l.credit = 0
		l.mu.Unlock()
	}
	l.mem.Store(lm)
	return lm.backing
}

// prereserve reserves what the module's declared minimum of n bytes will
// be charged, before instantiation: wazero can't fail that allocation
// gracefully.
func (l *memoryLimiter) prereserve(n uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n -= min(l.credit, n)
	if n <= l.reserved {
		return true
	}
	if !l.budget.TryReserve(n - l.reserved) {
		l.refuse(n, true)
		return false
	}
	l.reserved = n
	return true
}

// commit is called by the backing before it makes size bytes usable: it
// reserves what the budget does not hold yet, and reports whether the
// guest may have them. A refusal is recorded when record is set (it is
// not for an attempt at more than the guest asked for).
func (l *memoryLimiter) commit(size uint64, record bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if charge := size - min(l.credit, size); charge > l.reserved {
		if !l.budget.TryReserve(charge - l.reserved) {
			if record {
				l.refuse(size, true)
			}
			return false
		}
		l.reserved = charge
	}
	l.committed.Store(size)
	return true
}

// recount measures the image pages the memory wrote and moves its charge
// to match: its committed bytes less the image it still shares. The
// pages are taken already, so the budget counts them whatever its limit.
// It returns the image bytes written in all, and since the last recount.
func (l *memoryLimiter) recount() (written, grewBy uint64) {
	m := l.mem.Load()
	if m == nil || !m.imageMapped || l.image == nil {
		return 0, 0
	}
	written, ok := m.imageWritten()
	if !ok {
		// Unmeasurable now: charge the whole image rather than guess.
		written = l.image.size
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	committed := l.committed.Load()
	if committed == 0 {
		return 0, 0 // freed, or not yet committed
	}
	l.credit = l.image.size - min(written, l.image.size)
	charge := committed - min(l.credit, committed)
	switch {
	case charge > l.reserved:
		l.budget.Reserve(charge - l.reserved)
	case charge < l.reserved:
		l.budget.Release(l.reserved - charge)
	}
	l.reserved = charge
	grewBy = written - min(l.imageWritten, written)
	l.imageWritten = written
	return written, grewBy
}

// freed gives everything back to the budget, once the memory is unmapped.
func (l *memoryLimiter) freed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.budget.Release(l.reserved)
	l.reserved = 0
	l.committed.Store(0)
	l.imageWritten = 0
}

// free releases the linear memory if wazero did not: an instantiation that
// failed after building the memory drops the instance without closing it.
// Called with the actor's call lock held, after its module was closed, so
// no guest code runs on the memory.
func (l *memoryLimiter) free() {
	if m := l.mem.Load(); m != nil {
		m.backing.Free()
	}
	l.freed()
}

// refuse records a denied growth.
func (l *memoryLimiter) refuse(size uint64, byBudget bool) {
	if byBudget {
		l.budgetUsed.Store(l.budget.Used())
		l.budgetLimit.Store(l.budget.Limit())
	}
	for {
		old := l.refused.Load()
		if size <= old {
			return
		}
		if l.refused.CompareAndSwap(old, size) {
			l.byBudget.Store(byBudget)
			return
		}
	}
}

// refusal describes the largest denied growth for an error message, ""
// when none was denied.
func (l *memoryLimiter) refusal() string {
	if l == nil {
		return ""
	}
	size := l.refused.Load()
	if size == 0 {
		return ""
	}
	if l.byBudget.Load() {
		return fmt.Sprintf("memory.grow to %d pages refused: the host's memory budget for its actors is spent (%s of %s in use)",
			size/wasmPageSize, textutil.FormatBytes(l.budgetUsed.Load()), textutil.FormatBytes(l.budgetLimit.Load()))
	}
	return fmt.Sprintf("memory.grow to %d pages refused: the actor's limit is %d pages", size/wasmPageSize, l.limit/wasmPageSize)
}

// residentBytes reports how much RAM the actor's linear memory holds, and
// how much of it is shared with the other instances of its module.
func (l *memoryLimiter) residentBytes() (resident, shared uint64) {
	if m := l.mem.Load(); m != nil {
		return m.resident()
	}
	return 0, 0
}

// reservedBytes is what the linear memory holds in the budget.
func (l *memoryLimiter) reservedBytes() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserved
}

// heapMemory is a Go-heap backed linear memory with a hard limit; it is the
// fallback where address-space reservation is unavailable or fails.
type heapMemory struct {
	mu    sync.Mutex // guards buf against the accounting's reads
	buf   []byte
	limit uint64
	lim   *memoryLimiter
	fill  imageFill
}

func newHeapMemory(limit, capBytes uint64, lim *memoryLimiter) *linearMemory {
	h := &heapMemory{limit: limit, lim: lim, fill: imageFill{img: lim.image}}
	if capBytes > limit {
		capBytes = limit
	}
	h.buf = make([]byte, 0, capBytes)
	return &linearMemory{backing: h, resident: func() (uint64, uint64) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return uint64(cap(h.buf)), 0
	}}
}

// Reallocate implements experimental.LinearMemory.
func (h *heapMemory) Reallocate(size uint64) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if size > h.limit {
		h.lim.refuse(size, false)
		return nil
	}
	if size <= uint64(cap(h.buf)) {
		h.buf = h.buf[:size]
		h.fill.committed(h.buf, size)
		return h.buf
	}
	// Double, within the limit, so a guest growing page by page costs
	// amortised linear time; the budget is charged for the whole capacity
	// (it is all allocated), but only size is needed: without room for
	// the doubling, grow exactly.
	newCap := min(max(size, 2*uint64(cap(h.buf))), h.limit)
	if !h.lim.commit(newCap, newCap == size) {
		if newCap == size || !h.lim.commit(size, true) {
			return nil
		}
		newCap = size
	}
	nb := make([]byte, size, newCap)
	copy(nb, h.buf)
	h.buf = nb
	h.fill.committed(h.buf, size)
	return h.buf
}

// Free implements experimental.LinearMemory.
func (h *heapMemory) Free() {
	h.mu.Lock()
	h.buf = nil
	h.mu.Unlock()
	h.lim.freed()
}
