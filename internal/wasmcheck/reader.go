package wasmcheck

import "fmt"

// reader reads one section (or one function body) of a module; base is the
// offset of b[0] in the module, for messages.
type reader struct {
	b    []byte
	base int
	pos  int
}

func (r *reader) off() int       { return r.base + r.pos }
func (r *reader) remaining() int { return len(r.b) - r.pos }
func (r *reader) done() bool     { return r.pos >= len(r.b) }

// sub returns a reader of the next n bytes and moves past them.
func (r *reader) sub(n uint32, what string) (*reader, error) {
	if uint64(n) > uint64(r.remaining()) {
		return nil, malformed(r.off(), "%s of %d bytes runs past the end (%d left)", what, n, r.remaining())
	}
	s := &reader{b: r.b[r.pos : r.pos+int(n)], base: r.off()}
	r.pos += int(n)
	return s, nil
}

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, malformed(r.off(), "unexpected end")
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) skip(n int) error {
	if n > r.remaining() {
		return malformed(r.off(), "unexpected end")
	}
	r.pos += n
	return nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func (r *reader) u32() (uint32, error) {
	v, n, ok := ReadU32(r.b[r.pos:])
	if !ok {
		return 0, malformed(r.off(), "bad unsigned LEB128 integer")
	}
	r.pos += n
	return v, nil
}

// signed skips a signed LEB128 of at most maxBytes bytes (5 for s32 and
// s33, 10 for s64) and returns its value as far as 64 bits hold it. Its
// range is the validator's business: the check only needs its length.
func (r *reader) signed(maxBytes int) (int64, error) {
	var v int64
	var shift uint
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return 0, malformed(r.off(), "signed LEB128 integer longer than %d bytes", maxBytes)
}

// count reads a vector's length and checks it against max (the Limits
// field named limit; what is the message's format, with %d for the count)
// and against the bytes left:
// every entry takes at least minBytes, so a count the section cannot hold
// is refused before anyone sizes anything from it.
func (r *reader) count(limit, what string, max uint32, minBytes int) (uint32, error) {
	at := r.off()
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if limit != "" && n > max {
		return 0, tooMany(limit, uint64(n), uint64(max), at, what)
	}
	if uint64(n)*uint64(minBytes) > uint64(r.remaining()) {
		return 0, malformed(at, fmt.Sprintf(what, n)+", but only %d bytes follow", r.remaining())
	}
	return n, nil
}

// name reads a length-prefixed string (its UTF-8 is the decoder's concern).
func (r *reader) name(what string) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	_, err = r.sub(n, what)
	return err
}

// ReadU32 decodes an unsigned LEB128 of at most 5 bytes that fits 32 bits:
// its value, the bytes it took, and false when b holds no such number. It
// never panics, whatever b holds.
func ReadU32(b []byte) (v uint32, n int, ok bool) {
	var x uint64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, false
		}
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if x > 0xffffffff {
				return 0, 0, false
			}
			return uint32(x), i + 1, true
		}
	}
	return 0, 0, false
}

// ReadS32 decodes a signed LEB128 of at most 5 bytes that fits 32 bits
// (an i32.const's immediate): its value, the bytes it took, and false when
// b holds no such number. It never panics, whatever b holds.
func ReadS32(b []byte) (v int32, n int, ok bool) {
	var x int64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, false
		}
		c := b[i]
		x |= int64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if shift := 7 * (i + 1); c&0x40 != 0 {
				x |= -1 << shift
			}
			if x < -1<<31 || x > 1<<31-1 {
				return 0, 0, false
			}
			return int32(x), i + 1, true
		}
	}
	return 0, 0, false
}
