package actorhost

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/troupe-dev/troupe/internal/abi"
)

// stateResult is the lifted result of a state call (init, tick):
// result<tuple<option<list<u8>>>, string>, laid out as abi.StateResult.
type stateResult struct {
	ok bool
	// hasState and state: the new state (ok only).
	hasState bool
	state    []byte
	// errMsg is the guest's error string (err only).
	errMsg string
}

// saved is the new state as the actor keeps it.
func (r stateResult) saved() savedState { return savedState{hasState: r.hasState, state: r.state} }

// abiError is a guest's violation of the canonical ABI: a pointer, length,
// alignment or discriminant the host cannot accept.
type abiError struct{ msg string }

func (e *abiError) Error() string { return e.msg }

func abiErrorf(format string, args ...any) error {
	return &abiError{msg: fmt.Sprintf(format, args...)}
}

// decodeResult lifts a result<tuple<option<list<u8>>>, string> that the
// export fn returned a pointer to. It never reads outside mem and checks
// every length against its bound before copying, so any guest answer is
// either a result or an *abiError. The state is copied out: the guest may
// free or reuse it in cabi_post.
func decodeResult(mem []byte, ret uint32, maxState, maxErr int, fn string) (stateResult, error) {
	size := uint64(len(mem))
	layout := abi.StateResult
	if ret%layout.Align != 0 {
		return stateResult{}, abiErrorf("%s returned result pointer %#x, not aligned to %d", fn, ret, layout.Align)
	}
	if uint64(ret)+uint64(layout.Size) > size {
		return stateResult{}, abiErrorf("%s returned result pointer %#x, outside the %d-byte memory", fn, ret, size)
	}
	area := mem[ret : uint64(ret)+uint64(layout.Size)]
	switch disc := area[0]; disc {
	case 0: // ok
		switch opt := area[abi.StateOption]; opt {
		case 0:
			return stateResult{ok: true}, nil
		case 1:
			ptr := binary.LittleEndian.Uint32(area[abi.StatePtr:])
			n := binary.LittleEndian.Uint32(area[abi.StateLen:])
			if uint64(n) > uint64(maxState) {
				return stateResult{}, abiErrorf("%s returned a state of %d bytes, more than the %d allowed", fn, n, maxState)
			}
			if uint64(ptr)+uint64(n) > size {
				return stateResult{}, abiErrorf("%s returned state at %#x+%d, outside the %d-byte memory", fn, ptr, n, size)
			}
			state := make([]byte, n)
			copy(state, mem[ptr:])
			return stateResult{ok: true, hasState: true, state: state}, nil
		default:
			return stateResult{}, abiErrorf("%s returned option discriminant %d for its state (want 0 or 1)", fn, opt)
		}
	case 1: // err
		ptr := binary.LittleEndian.Uint32(area[abi.ResultPayload:])
		n := binary.LittleEndian.Uint32(area[abi.ResultPayload+4:])
		if uint64(ptr)+uint64(n) > size {
			return stateResult{}, abiErrorf("%s returned an error string at %#x+%d, outside the %d-byte memory", fn, ptr, n, size)
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
		return stateResult{errMsg: s}, nil
	default:
		return stateResult{}, abiErrorf("%s returned result discriminant %d (want 0 for ok or 1 for err)", fn, disc)
	}
}

// checkGuestRange reports whether [ptr, ptr+n) lies inside a memory of size
// bytes, with arithmetic that cannot overflow.
func checkGuestRange(ptr, n uint32, size uint64) bool {
	return uint64(ptr)+uint64(n) <= size
}
