package actorhost

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/troupe-dev/troupe/internal/abi"
)

// stateResult is the lifted result of a state call (init, tick,
// handle-send): result<tuple<option<list<u8>>>, string>, laid out as
// abi.StateResult; for handle-request, abi.RequestResult adds the
// response.
type stateResult struct {
	ok bool
	// hasState and state: the new state (ok only).
	hasState bool
	state    []byte
	// hasResponse and response: handle-request's response (ok only).
	hasResponse bool
	response    []byte
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
	area, err := resultArea(mem, ret, abi.StateResult, fn)
	if err != nil {
		return stateResult{}, err
	}
	switch disc := area[0]; disc {
	case 0: // ok
		var r stateResult
		r.ok = true
		r.hasState, r.state, err = decodeOptionList(mem, area, abi.StateOption, maxState, "state", fn)
		return r, err
	case 1: // err
		return stateResult{errMsg: decodeErrString(mem, area, maxErr)}, checkErrString(mem, area, fn)
	default:
		return stateResult{}, abiErrorf("%s returned result discriminant %d (want 0 for ok or 1 for err)", fn, disc)
	}
}

// decodeRequestResult lifts handle-request's result<tuple<option<list<u8>>,
// tuple<option<list<u8>>>>, string> (abi.RequestResult), with decodeResult's
// guarantees; the response is bounded by maxResponse.
func decodeRequestResult(mem []byte, ret uint32, maxState, maxResponse, maxErr int, fn string) (stateResult, error) {
	area, err := resultArea(mem, ret, abi.RequestResult, fn)
	if err != nil {
		return stateResult{}, err
	}
	switch disc := area[0]; disc {
	case 0:
		r := stateResult{ok: true}
		if r.hasState, r.state, err = decodeOptionList(mem, area, abi.StateOption, maxState, "state", fn); err != nil {
			return stateResult{}, err
		}
		if r.hasResponse, r.response, err = decodeOptionList(mem, area, abi.ResponseOption, maxResponse, "response", fn); err != nil {
			return stateResult{}, err
		}
		return r, nil
	case 1:
		return stateResult{errMsg: decodeErrString(mem, area, maxErr)}, checkErrString(mem, area, fn)
	default:
		return stateResult{}, abiErrorf("%s returned result discriminant %d (want 0 for ok or 1 for err)", fn, disc)
	}
}

// resultArea is the layout-sized area at ret, checked for alignment and
// bounds.
func resultArea(mem []byte, ret uint32, layout abi.Layout, fn string) ([]byte, error) {
	size := uint64(len(mem))
	if ret%layout.Align != 0 {
		return nil, abiErrorf("%s returned result pointer %#x, not aligned to %d", fn, ret, layout.Align)
	}
	if uint64(ret)+uint64(layout.Size) > size {
		return nil, abiErrorf("%s returned result pointer %#x, outside the %d-byte memory", fn, ret, size)
	}
	return mem[ret : uint64(ret)+uint64(layout.Size)], nil
}

// decodeOptionList lifts the option<list<u8>> whose discriminant is at
// area[off] and (ptr, len) at off+4, copying at most maxN bytes out.
func decodeOptionList(mem, area []byte, off uint32, maxN int, what, fn string) (bool, []byte, error) {
	switch opt := area[off]; opt {
	case 0:
		return false, nil, nil
	case 1:
		ptr := binary.LittleEndian.Uint32(area[off+4:])
		n := binary.LittleEndian.Uint32(area[off+8:])
		if uint64(n) > uint64(maxN) {
			return false, nil, abiErrorf("%s returned a %s of %d bytes, more than the %d allowed", fn, what, n, maxN)
		}
		if uint64(ptr)+uint64(n) > uint64(len(mem)) {
			return false, nil, abiErrorf("%s returned %s at %#x+%d, outside the %d-byte memory", fn, what, ptr, n, len(mem))
		}
		b := make([]byte, n)
		copy(b, mem[ptr:])
		return true, b, nil
	default:
		return false, nil, abiErrorf("%s returned option discriminant %d for its %s (want 0 or 1)", fn, opt, what)
	}
}

// checkErrString reports an err result's string outside memory.
func checkErrString(mem, area []byte, fn string) error {
	ptr := binary.LittleEndian.Uint32(area[abi.ResultPayload:])
	n := binary.LittleEndian.Uint32(area[abi.ResultPayload+4:])
	if uint64(ptr)+uint64(n) > uint64(len(mem)) {
		return abiErrorf("%s returned an error string at %#x+%d, outside the %d-byte memory", fn, ptr, n, len(mem))
	}
	return nil
}

// decodeErrString is an err result's string, cut to maxErr bytes, made
// valid UTF-8; "" when it lies outside memory (checkErrString says so).
func decodeErrString(mem, area []byte, maxErr int) string {
	ptr := binary.LittleEndian.Uint32(area[abi.ResultPayload:])
	n := binary.LittleEndian.Uint32(area[abi.ResultPayload+4:])
	if uint64(ptr)+uint64(n) > uint64(len(mem)) {
		return ""
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
	return s
}

// checkGuestRange reports whether [ptr, ptr+n) lies inside a memory of size
// bytes, with arithmetic that cannot overflow.
func checkGuestRange(ptr, n uint32, size uint64) bool {
	return uint64(ptr)+uint64(n) <= size
}
