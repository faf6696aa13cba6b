package wasmimage

import (
	"bytes"

	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// PageBytes is the size of a WebAssembly page; images are whole pages.
const PageBytes = 65536

// Section ids this package reads (WebAssembly core spec, binary format).
const (
	sectionCustom    = 0
	sectionImport    = 2
	sectionMemory    = 5
	sectionData      = 11
	sectionDataCount = 12
)

// Image is a module's linear memory as its data segments leave it, before
// any code runs.
type Image struct {
	// Bytes is the start of the memory, through its last page that is
	// not all zeros (whole pages); the rest of the memory is zeros. Empty
	// when the segments write only zeros.
	Bytes []byte
	// MinPages is the memory's declared minimum: Bytes never exceeds it.
	MinPages uint32
	// Segments is how many data segments the image replaces.
	Segments int
}

// Split returns wasm without its data section, and the initial memory
// image the section described, when the module qualifies (see the package
// doc); otherwise ok is false and the caller must use wasm unchanged.
// maxImage bounds the image's size in bytes (a sparse segment far into a
// large declared memory would otherwise cost that much at compile time);
// a larger one is refused. The module returned is a new slice; wasm is not
// modified.
func Split(wasm []byte, maxImage uint64) (module []byte, img *Image, ok bool) {
	secs, ok := sections(wasm)
	if !ok {
		return nil, nil, false
	}
	data, hasData := secs[sectionData]
	mem, hasMem := secs[sectionMemory]
	if _, dc := secs[sectionDataCount]; dc || !hasData || !hasMem {
		return nil, nil, false
	}
	if imp, ok := secs[sectionImport]; ok && importsMemory(wasm[imp.body:imp.end]) {
		return nil, nil, false
	}
	minPages, ok := memoryMin(wasm[mem.body:mem.end])
	if !ok {
		return nil, nil, false
	}
	minBytes := uint64(minPages) * PageBytes
	segs, ok := segments(wasm[data.body:data.end])
	if !ok {
		return nil, nil, false
	}
	var top uint64
	for _, s := range segs {
		end := uint64(s.offset) + uint64(len(s.init))
		if end > minBytes {
			return nil, nil, false // fails instantiation: leave it to wazero
		}
		if len(s.init) > 0 {
			top = max(top, end)
		}
	}
	size := (top + PageBytes - 1) / PageBytes * PageBytes
	if size > maxImage {
		return nil, nil, false
	}
	image := make([]byte, size)
	for _, s := range segs {
		copy(image[s.offset:], s.init)
	}
	// Trim the trailing pages of zeros: they are the memory's anyway.
	for len(image) > 0 && allZero(image[len(image)-PageBytes:]) {
		image = image[:len(image)-PageBytes]
	}
	out := make([]byte, 0, len(wasm)-(data.end-data.start))
	out = append(out, wasm[:data.start]...)
	out = append(out, wasm[data.end:]...)
	return out, &Image{Bytes: image, MinPages: minPages, Segments: len(segs)}, true
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// section is where one section lies in the module: start at its id byte,
// body after its size, end after its last byte.
type section struct{ start, body, end int }

// sections reads the module's section headers: the non-custom ones by id,
// each at most once; false when the module is not one it can read.
func sections(wasm []byte) (map[byte]section, bool) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, false
	}
	secs := make(map[byte]section)
	pos := 8
	for pos < len(wasm) {
		id := wasm[pos]
		size, n, ok := wasmcheck.ReadU32(wasm[pos+1:])
		if !ok {
			return nil, false
		}
		body := pos + 1 + n
		end := body + int(size)
		if end > len(wasm) || end < body {
			return nil, false
		}
		if id != sectionCustom {
			if _, dup := secs[id]; dup {
				return nil, false
			}
			secs[id] = section{start: pos, body: body, end: end}
		}
		pos = end
	}
	return secs, true
}

// reader reads a section's body; every read is bounded by it.
type reader struct {
	b   []byte
	pos int
	bad bool
}

func (r *reader) byte() byte {
	if r.bad || r.pos >= len(r.b) {
		r.bad = true
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) u32() uint32 {
	if r.bad {
		return 0
	}
	v, n, ok := wasmcheck.ReadU32(r.b[r.pos:])
	if !ok {
		r.bad = true
		return 0
	}
	r.pos += n
	return v
}

// s32 reads a signed LEB128 of at most 5 bytes that fits 32 bits.
func (r *reader) s32() int32 {
	if r.bad {
		return 0
	}
	v, n, ok := wasmcheck.ReadS32(r.b[r.pos:])
	if !ok {
		r.bad = true
		return 0
	}
	r.pos += n
	return v
}

// bytes returns the next n bytes, without copying.
func (r *reader) bytes(n uint32) []byte {
	if r.bad || uint64(n) > uint64(len(r.b)-r.pos) {
		r.bad = true
		return nil
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b
}

// limits reads a table's or a memory's limits; only the plain 32-bit,
// unshared forms (flags 0 and 1) are accepted.
func (r *reader) limits() (minimum uint32) {
	switch r.byte() {
	case 0:
		return r.u32()
	case 1:
		minimum = r.u32()
		r.u32()
		return minimum
	default:
		r.bad = true
		return 0
	}
}

// importsMemory reports whether the import section imports a memory, or
// can't be read (the caller then leaves the module alone).
func importsMemory(sec []byte) bool {
	r := &reader{b: sec}
	n := r.u32()
	for i := uint32(0); i < n && !r.bad; i++ {
		r.bytes(r.u32()) // module
		r.bytes(r.u32()) // name
		switch r.byte() {
		case 0: // function: type index
			r.u32()
		case 1: // table: reference type, limits
			r.byte()
			r.limits()
		case 2: // memory
			return true
		case 3: // global: value type, mutability
			r.byte()
			r.byte()
		default: // a tag, or something newer: don't guess
			return true
		}
	}
	return r.bad || r.pos != len(r.b)
}

// memoryMin reads a memory section of exactly one plain memory.
func memoryMin(sec []byte) (uint32, bool) {
	r := &reader{b: sec}
	if r.u32() != 1 {
		return 0, false
	}
	minimum := r.limits()
	if r.bad || r.pos != len(r.b) || minimum > 65536 {
		return 0, false
	}
	return minimum, true
}

type segment struct {
	offset uint32
	init   []byte
}

// segments reads a data section whose every segment is active, for memory
// 0, at an i32.const offset.
func segments(sec []byte) ([]segment, bool) {
	r := &reader{b: sec}
	n := r.u32()
	// Each segment takes at least 4 bytes: no count can claim more than
	// the section holds, so the slice is bounded by the input.
	if r.bad || uint64(n) > uint64(len(sec))/4 {
		return nil, false
	}
	segs := make([]segment, 0, n)
	for i := uint32(0); i < n; i++ {
		switch r.u32() {
		case 0:
		case 2:
			if r.u32() != 0 {
				return nil, false
			}
		default: // passive (1) or unreadable
			return nil, false
		}
		if r.byte() != 0x41 { // i32.const
			return nil, false
		}
		off := r.s32()
		if r.byte() != 0x0b { // end
			return nil, false
		}
		init := r.bytes(r.u32())
		if r.bad {
			return nil, false
		}
		segs = append(segs, segment{offset: uint32(off), init: init})
	}
	if r.bad || r.pos != len(r.b) {
		return nil, false
	}
	return segs, true
}
