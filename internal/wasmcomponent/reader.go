package wasmcomponent

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// reader decodes the primitives of the WebAssembly binary format from an
// untrusted byte slice. Every read is checked against the bytes left; the
// first failure is kept in err and every later read returns zero values, so
// callers may read a whole production and check err once.
type reader struct {
	b []byte
	// base is the offset of b[0] in the whole binary, for error messages.
	base int
	pos  int
	err  error
}

func newReader(b []byte, base int) *reader { return &reader{b: b, base: base} }

// offset is the position of the next byte in the whole binary.
func (r *reader) offset() int { return r.base + r.pos }

func (r *reader) remaining() int { return len(r.b) - r.pos }

func (r *reader) done() bool { return r.err != nil || r.pos >= len(r.b) }

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = &MalformedError{Offset: r.offset(), Msg: fmt.Sprintf(format, args...)}
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

// peek returns the next byte without consuming it (0 at the end).
func (r *reader) peek() byte {
	if r.err != nil || r.pos >= len(r.b) {
		return 0
	}
	return r.b[r.pos]
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.remaining() {
		r.fail("length %d exceeds the %d bytes left", n, r.remaining())
		return nil
	}
	s := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return s
}

// u32 decodes an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func (r *reader) u32() uint32 {
	var x uint64
	for i := 0; i < 5; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if x > math.MaxUint32 {
				r.fail("integer too large for u32")
				return 0
			}
			return uint32(x)
		}
	}
	r.fail("integer representation too long")
	return 0
}

// u64 decodes an unsigned LEB128 of at most 10 bytes.
func (r *reader) u64() uint64 {
	var x uint64
	for i := 0; i < 10; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if i == 9 && c > 1 {
			r.fail("integer too large for u64")
			return 0
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return x
		}
	}
	r.fail("integer representation too long")
	return 0
}

// s33 decodes a signed LEB128 of at most 5 bytes in the 33-bit range: the
// encoding of a value type that is either a type index (non-negative) or a
// type opcode (negative).
func (r *reader) s33() int64 { return r.signed(5, 33) }

// s32 decodes a signed LEB128 of at most 5 bytes (i32.const's immediate).
func (r *reader) s32() int32 { return int32(r.signed(5, 32)) }

func (r *reader) signed(maxBytes, bits int) int64 {
	var x int64
	shift := 0
	for i := 0; i < maxBytes; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		x |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				x |= -1 << shift
			}
			if x < -(1<<(bits-1)) || x >= 1<<(bits-1) {
				r.fail("integer out of range for s%d", bits)
				return 0
			}
			return x
		}
	}
	r.fail("integer representation too long")
	return 0
}

// count reads a vector's length and checks it against the bytes left,
// given that each element takes at least minSize bytes, so that a hostile
// count fails here rather than in a loop or an allocation.
func (r *reader) count(what string, minSize int) int {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		r.fail("%s count %d exceeds what the %d bytes left can hold", what, n, r.remaining())
		return 0
	}
	return int(n)
}

// name reads a length-prefixed UTF-8 string of at most maxNameBytes.
func (r *reader) name() string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if n > maxNameBytes {
		r.fail("name of %d bytes is longer than the %d allowed", n, maxNameBytes)
		return ""
	}
	b := r.bytes(int(n))
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		r.fail("name is not valid UTF-8")
		return ""
	}
	return string(b)
}

// maxNameBytes bounds every name: import, export and instantiation-argument
// names of real components are tens of bytes.
const maxNameBytes = 64 << 10

// MalformedError is a binary that does not decode: a length past the end,
// an unknown opcode where only known ones may be, a bad LEB128.
type MalformedError struct {
	Offset int
	Msg    string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed component at byte %d: %s", e.Offset, e.Msg)
}
