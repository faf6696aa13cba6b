package actorhost

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Names of the guest's exports, from wit/theater-simple.wit and
// wit/troupe-ticker.wit lowered with the canonical ABI the way wit-bindgen
// does it.
const (
	exportInit       = "theater:simple/actor#init"
	exportInitPost   = "cabi_post_theater:simple/actor#init"
	exportRealloc    = "cabi_realloc"
	exportMemory     = "memory"
	exportInitialize = "_initialize"
	// exportTick is the optional periodic entry point (troupe:actor/ticker):
	// its result has init's type, so it is lifted by the same decoder.
	exportTick     = "troupe:actor/ticker#tick"
	exportTickPost = "cabi_post_troupe:actor/ticker#tick"
)

// Layout of init's (and tick's) result, result<tuple<option<list<u8>>>, string>, in
// linear memory (canonical ABI): the variant's u8 discriminant at +0, its
// payload at the payload alignment (4, from the i32 pointers inside), so +4.
// ok: tuple<option<list<u8>>> = option's u8 discriminant at +4, the list's
// (ptr, len) at +8 and +12 (option payload aligned to 4). err: string's
// (ptr, len) at +4 and +8. Size 16, alignment 4.
const (
	initResultSize  = 16
	initResultAlign = 4
)

// initResult is the lifted result of init or tick.
type initResult struct {
	ok bool
	// hasState and state: the new state (ok only).
	hasState bool
	state    []byte
	// errMsg is the guest's error string (err only).
	errMsg string
}

// abiError is a guest's violation of the canonical ABI: a pointer, length,
// alignment or discriminant the host cannot accept.
type abiError struct{ msg string }

func (e *abiError) Error() string { return e.msg }

func abiErrorf(format string, args ...any) error {
	return &abiError{msg: fmt.Sprintf(format, args...)}
}

// decodeInitResult lifts init's result from mem (the guest's whole linear
// memory) at ret; see decodeResult.
func decodeInitResult(mem []byte, ret uint32, maxState, maxErr int) (initResult, error) {
	return decodeResult(mem, ret, maxState, maxErr, "init")
}

// decodeResult lifts a result<tuple<option<list<u8>>>, string> that the
// export fn returned a pointer to. It never reads outside mem and checks
// every length against its bound before copying, so any guest answer is
// either a result or an *abiError. The state is copied out: the guest may
// free or reuse it in cabi_post.
func decodeResult(mem []byte, ret uint32, maxState, maxErr int, fn string) (initResult, error) {
	size := uint64(len(mem))
	if ret%initResultAlign != 0 {
		return initResult{}, abiErrorf("%s returned result pointer %#x, not aligned to %d", fn, ret, initResultAlign)
	}
	if uint64(ret)+initResultSize > size {
		return initResult{}, abiErrorf("%s returned result pointer %#x, outside the %d-byte memory", fn, ret, size)
	}
	area := mem[ret : ret+initResultSize]
	switch disc := area[0]; disc {
	case 0: // ok
		switch opt := area[4]; opt {
		case 0:
			return initResult{ok: true}, nil
		case 1:
			ptr := binary.LittleEndian.Uint32(area[8:])
			n := binary.LittleEndian.Uint32(area[12:])
			if uint64(n) > uint64(maxState) {
				return initResult{}, abiErrorf("%s returned a state of %d bytes, more than the %d allowed", fn, n, maxState)
			}
			if uint64(ptr)+uint64(n) > size {
				return initResult{}, abiErrorf("%s returned state at %#x+%d, outside the %d-byte memory", fn, ptr, n, size)
			}
			state := make([]byte, n)
			copy(state, mem[ptr:])
			return initResult{ok: true, hasState: true, state: state}, nil
		default:
			return initResult{}, abiErrorf("%s returned option discriminant %d for its state (want 0 or 1)", fn, opt)
		}
	case 1: // err
		ptr := binary.LittleEndian.Uint32(area[4:])
		n := binary.LittleEndian.Uint32(area[8:])
		if uint64(ptr)+uint64(n) > size {
			return initResult{}, abiErrorf("%s returned an error string at %#x+%d, outside the %d-byte memory", fn, ptr, n, size)
		}
		msg := mem[ptr : uint64(ptr)+uint64(n)]
		truncated := false
		if len(msg) > maxErr {
			msg, truncated = msg[:maxErr], true
		}
		s := string(msg)
		if !utf8.ValidString(s) {
			// The canonical ABI traps on invalid UTF-8; the message is
			// still the best account of why the call failed, so keep it.
			s = strings.ToValidUTF8(s, "\uFFFD")
		}
		if truncated {
			s += fmt.Sprintf("… (%d bytes in all)", n)
		}
		return initResult{errMsg: s}, nil
	default:
		return initResult{}, abiErrorf("%s returned result discriminant %d (want 0 for ok or 1 for err)", fn, disc)
	}
}

// checkGuestRange reports whether [ptr, ptr+n) lies inside a memory of size
// bytes, with arithmetic that cannot overflow.
func checkGuestRange(ptr, n uint32, size uint64) bool {
	return uint64(ptr)+uint64(n) <= size
}
