package actorhost

import (
	"sync"
)

// memImage is a module's initial linear memory, built once per compiled
// module from its data segments (internal/wasmimage) and laid under the
// start of every instance's memory before the guest runs: the module that
// wazero instantiates has no data section left to copy.
//
// Where the platform can (Linux: a sealed memfd), the image is shared: each
// instance maps it privately over the start of its reservation, so the
// pages an instance never writes are one copy in RAM for all of them (the
// page cache), and a page it writes is copied for it alone. Elsewhere, or
// when the mapping fails, the image is copied into the instance's memory:
// correct, not shared.
type memImage struct {
	size uint64 // bytes, whole wasm pages

	// mu guards src and fd against close while an instance copies or maps
	// them (an instantiation racing ReleaseIdleComponents).
	mu     sync.RWMutex
	src    []byte // the bytes to copy: a read-only shared mapping, or the heap copy
	fd     int    // the sealed memfd to map; -1 without one
	unmap  func() // releases src and fd
	closed bool
}

// newMemImage keeps b (which it owns from then on) as an image, shared
// through the platform when it can be.
func newMemImage(b []byte, name string) *memImage {
	img := &memImage{size: uint64(len(b)), src: b, fd: -1}
	if fd, src, unmap, ok := shareImage(b, name); ok {
		img.fd, img.src, img.unmap = fd, src, unmap
	}
	return img
}

// shared reports whether instances map the image rather than copy it.
func (img *memImage) shared() bool { return img.fd >= 0 }

// mapInto maps the image, inaccessible (the backing makes it accessible as
// it commits), over the start of buf, a reservation of at least img.size
// bytes; false when it can't (buf is then untouched and the caller copies).
func (img *memImage) mapInto(buf []byte) bool {
	img.mu.RLock()
	defer img.mu.RUnlock()
	if img.closed || img.fd < 0 || uint64(len(buf)) < img.size {
		return false
	}
	return mapImage(img.fd, buf[:img.size])
}

// copyRange copies the image's bytes [from, to) into dst at the same
// offsets; dst is the start of a linear memory.
func (img *memImage) copyRange(dst []byte, from, to uint64) {
	img.mu.RLock()
	defer img.mu.RUnlock()
	to = min(to, img.size, uint64(len(dst)))
	if img.closed || from >= to {
		return
	}
	copy(dst[from:to], img.src[from:to])
}

// close releases the image; instances that mapped it keep their mappings
// (the kernel keeps the memfd's pages while any maps them).
func (img *memImage) close() {
	if img == nil {
		return
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.closed {
		return
	}
	img.closed = true
	if img.unmap != nil {
		img.unmap()
	}
	img.src, img.fd = nil, -1
}

// imageFill brings a memory's image in as the memory commits: nothing to
// do when the image is mapped; otherwise the part of the image that the
// newly committed bytes cover is copied (all of it at instantiation: the
// image never exceeds the declared minimum).
type imageFill struct {
	img    *memImage
	mapped bool
	copied uint64 // bytes of the image copied so far
}

// committed is called once buf[:size] is usable.
func (f *imageFill) committed(buf []byte, size uint64) {
	if f.img == nil || f.mapped || f.copied >= f.img.size {
		return
	}
	to := min(size, f.img.size)
	f.img.copyRange(buf, f.copied, to)
	f.copied = max(f.copied, to)
}
