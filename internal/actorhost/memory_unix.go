//go:build linux || darwin || freebsd

package actorhost

import (
	"sync"

	"golang.org/x/sys/unix"
)

// mmapMemory reserves the whole limit as inaccessible address space and
// makes it accessible as the guest grows. The reservation costs no RAM and
// no commit charge; growth is an mprotect, never a copy, and the backing
// array never moves.
//
// Free unmaps. wazero calls it only when the module is closed: either by
// the goroutine that was running the call (a deadline defers the release to
// it) or by a Close that the actor makes while holding its call lock, so no
// guest code can still be running on an unmapped memory.
type mmapMemory struct {
	// mu guards buf and committed against the accounting's reads (mincore
	// on an unmapped range must not happen).
	mu        sync.Mutex
	buf       []byte // the whole reservation
	committed uint64
	lim       *memoryLimiter
	fill      imageFill
}

func allocateLinearMemory(limit, capBytes uint64, lim *memoryLimiter) *linearMemory {
	if limit == 0 || limit > 1<<40 {
		return newHeapMemory(limit, capBytes, lim)
	}
	buf, err := unix.Mmap(-1, 0, int(limit), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		// Out of address space or map count: fall back to the heap, which
		// fails per actor (a refused grow) rather than for the process.
		return newHeapMemory(limit, capBytes, lim)
	}
	m := &mmapMemory{buf: buf, lim: lim, fill: imageFill{img: lim.image}}
	if img := lim.image; img != nil {
		// Shared copy-on-write where it can be; otherwise fill copies it
		// as the memory commits.
		m.fill.mapped = img.mapInto(buf)
	}
	liveMappings.Add(1)
	// The image's credit is given only where its writes can be measured.
	return &linearMemory{backing: m, resident: m.resident, imageMapped: m.fill.mapped && canCountImageWrites(), imageWritten: m.imageWritten}
}

// Reallocate implements experimental.LinearMemory.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf == nil {
		return nil
	}
	if size > uint64(len(m.buf)) {
		m.lim.refuse(size, false)
		return nil
	}
	if size > m.committed {
		if !m.lim.commit(size, true) {
			return nil
		}
		// Wasm sizes are multiples of 64 KiB, a multiple of every OS page size.
		if err := unix.Mprotect(m.buf[m.committed:size], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			// The budget keeps the reservation until Free: harmless, and
			// the next grow needs no new one.
			return nil
		}
		m.committed = size
		m.fill.committed(m.buf, size)
	}
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory.
func (m *mmapMemory) Free() {
	m.mu.Lock()
	if m.buf != nil {
		liveMappings.Add(-1)
		_ = unix.Munmap(m.buf)
		m.buf = nil
		m.committed = 0
	}
	m.mu.Unlock()
	m.lim.freed()
}

// resident counts the committed bytes that are in RAM and, of those, the
// image's pages still shared with the module's other instances.
func (m *mmapMemory) resident() (resident, shared uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf == nil || m.committed == 0 {
		return 0, 0
	}
	rest := m.buf[:m.committed]
	if m.fill.mapped {
		n := min(m.fill.img.size, m.committed)
		if r, s, ok := mappedResident(m.buf[:n]); ok {
			resident, shared, rest = r, s, m.buf[n:m.committed]
		}
	}
	if len(rest) > 0 {
		resident += residentBytes(rest)
	}
	return resident, shared
}

// imageWritten counts the bytes of the mapped image that this memory wrote:
// its pages in RAM that are no longer the file's (copied on write).
func (m *mmapMemory) imageWritten() (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf == nil || !m.fill.mapped {
		return 0, false
	}
	n := min(m.fill.img.size, m.committed)
	if n == 0 {
		return 0, true
	}
	resident, shared, ok := mappedResident(m.buf[:n])
	if !ok {
		return 0, false
	}
	return resident - shared, true
}
