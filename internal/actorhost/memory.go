package actorhost

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/troupe-dev/troupe/internal/limits"
)

// wasmPageSize is the size of one page of WebAssembly linear memory.
const wasmPageSize = limits.PageBytes

// memoryLimiter enforces one actor's linear-memory limit.
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
// On unix the memory is a PROT_NONE reservation of the whole limit that is
// made readable and writable as it grows: growth never copies, and an idle
// actor costs only the OS pages it touched, not its declared minimum.
type memoryLimiter struct {
	limit uint64 // bytes
	// refused records the largest size, in bytes, that a grow asked for and
	// was denied because of the limit, so a trap that follows can be
	// reported as MemoryLimit rather than a bare trap.
	refused atomic.Uint64
	// mem is the live linear memory, for accounting; nil before Allocate.
	mem atomic.Pointer[linearMemory]
}

// liveMappings counts the linear memories mapped and not yet freed, so
// tests can tell that every path releases them.
var liveMappings atomic.Int64

// linearMemory is the allocator's answer; the platform decides the backing.
type linearMemory struct {
	backing experimental.LinearMemory
	// resident reports the bytes of this memory held in RAM, when the
	// platform can tell; otherwise the committed length.
	resident func() uint64
}

func newMemoryLimiter(pages uint32) *memoryLimiter {
	return &memoryLimiter{limit: uint64(pages) * wasmPageSize}
}

// Allocate implements experimental.MemoryAllocator.
func (l *memoryLimiter) Allocate(capBytes, maxBytes uint64) experimental.LinearMemory {
	limit := min(l.limit, maxBytes)
	lm := allocateLinearMemory(limit, capBytes, l)
	l.mem.Store(lm)
	return lm.backing
}

// refuse records a denied growth.
func (l *memoryLimiter) refuse(size uint64) {
	for {
		old := l.refused.Load()
		if size <= old || l.refused.CompareAndSwap(old, size) {
			return
		}
	}
}

// residentBytes reports how much RAM the actor's linear memory holds.
func (l *memoryLimiter) residentBytes() uint64 {
	if m := l.mem.Load(); m != nil {
		return m.resident()
	}
	return 0
}

// heapMemory is a Go-heap backed linear memory with a hard limit; it is the
// fallback where address-space reservation is unavailable or fails.
type heapMemory struct {
	buf   []byte
	limit uint64
	lim   *memoryLimiter
}

func newHeapMemory(limit, capBytes uint64, lim *memoryLimiter) *linearMemory {
	h := &heapMemory{limit: limit, lim: lim}
	if capBytes > limit {
		capBytes = limit
	}
	h.buf = make([]byte, 0, capBytes)
	return &linearMemory{backing: h, resident: func() uint64 { return uint64(cap(h.buf)) }}
}

// Reallocate implements experimental.LinearMemory.
func (h *heapMemory) Reallocate(size uint64) []byte {
	if size > h.limit {
		h.lim.refuse(size)
		return nil
	}
	if size <= uint64(cap(h.buf)) {
		h.buf = h.buf[:size]
		return h.buf
	}
	// Double, within the limit, so a guest growing page by page costs
	// amortised linear time.
	newCap := min(max(size, 2*uint64(cap(h.buf))), h.limit)
	nb := make([]byte, size, newCap)
	copy(nb, h.buf)
	h.buf = nb
	return h.buf
}

// Free implements experimental.LinearMemory.
func (h *heapMemory) Free() { h.buf = nil }
