//go:build wasip1

package theater

import (
	"strings"
	"unsafe"

	"github.com/troupe-dev/troupe/sdk/theater/internal/msghook"
	"github.com/troupe-dev/troupe/sdk/theater/internal/tickhook"
)

// Memory handed to the host.
//
// The host writes strings and lists into memory it asks for with cabi_realloc
// (during an import call, or before calling init) and passes its address back
// as a plain i32. Go's garbage collector sees no reference in an i32, so each
// buffer is kept in pins until the guest takes ownership (claim) or the
// exchange is over (releasePins after each import call, at init entry and in
// post-return). Go's heap never moves objects, so a reachable buffer keeps its
// address; goroutine stacks do move, which is why nothing handed to the host
// lives on one.

// pin is a buffer cabi_realloc handed out, by the address it returned.
type pin struct {
	addr uint32
	buf  []byte
}

var pins []pin

// Results of the last init and tick calls, kept reachable until their
// post-return: the host reads them after the call has returned.
var (
	initResult initResultArea
	initKeep   []byte
	tickResult initResultArea
	tickKeep   []byte
)

// cabiRealloc is the canonical ABI allocator: (old ptr, old size, align, new
// size) -> ptr. A zero new size frees; a non-zero old ptr grows or shrinks an
// earlier allocation, keeping its contents.
//
//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	if align == 0 || align&(align-1) != 0 {
		panic("theater: cabi_realloc: alignment is not a power of two")
	}
	var old []byte
	if oldPtr != 0 {
		if i := findPin(oldPtr); i >= 0 {
			old = pins[i].buf
			removePin(i)
		} else if oldSize > 0 {
			old = rawMemory(oldPtr, oldSize)
		}
		old = old[:min(uint32(len(old)), oldSize)]
	}
	if newSize == 0 {
		// Any aligned address will do for zero bytes; nothing to keep alive.
		return align
	}
	buf := alignedBytes(newSize, align)
	copy(buf, old)
	addr := addrOf(buf)
	pins = append(pins, pin{addr: addr, buf: buf})
	return addr
}

// alignedBytes allocates n zeroed bytes at an address that is a multiple of
// align.
func alignedBytes(n, align uint32) []byte {
	// Go allocates blocks whose size is a multiple of 8 at 8-byte aligned
	// addresses (size classes are multiples of 8; the tiny allocator aligns an
	// 8-byte block to 8), which covers every canonical ABI alignment.
	if align <= 8 {
		buf := make([]byte, (uint64(n)+7)&^7)
		if addrOf(buf)%align == 0 {
			return buf[:n:n]
		}
	}
	buf := make([]byte, uint64(n)+uint64(align))
	off := (align - addrOf(buf)%align) % align
	return buf[off : off+n : off+n]
}

// The result area (wit/troupe-result-area.wit): a buffer of ours the host
// writes small runtime-call results into instead of asking cabi_realloc for
// memory, which saves it a nested call into the guest per string. What it
// writes there is borrowed: claimString and claim copy it (it is no pin)
// before the call ends (endCall), so the next call may overwrite it. A
// package-level array never moves; uint64 elements align it to 8, as the
// host requires.
var (
	resultArea     [resultAreaBytes / 8]uint64
	resultAreaInfo [2]uint32 // (address, capacity), what the export returns a pointer to
)

// resultAreaBytes is the area's capacity: get-env values, ids, names and
// error messages fit; a larger result comes from cabi_realloc.
const resultAreaBytes = 4096

// exportResultArea is troupe:actor/result-area#result-area: () -> i32, a
// pointer to (area address u32, capacity u32). The host calls it once.
//
//go:wasmexport troupe:actor/result-area#result-area
func exportResultArea() uint32 {
	resultAreaInfo = [2]uint32{uint32(uintptr(unsafe.Pointer(&resultArea))), resultAreaBytes}
	return uint32(uintptr(unsafe.Pointer(&resultAreaInfo)))
}

// exportPostResultArea is cabi_post_troupe:actor/result-area#result-area:
// nothing to free, resultAreaInfo lives as long as the module.
//
//go:wasmexport cabi_post_troupe:actor/result-area#result-area
func exportPostResultArea(uint32) {}

// claim takes ownership of n bytes at ptr that the host wrote into a buffer
// from cabi_realloc: the buffer leaves pins and is returned as an ordinary
// slice the garbage collector tracks. Memory the host did not get from
// cabi_realloc (the result area, among others) is copied instead.
func claim(ptr, n uint32) []byte {
	if n == 0 {
		return []byte{}
	}
	if i := findPin(ptr); i >= 0 && uint32(len(pins[i].buf)) >= n {
		b := pins[i].buf[:n:n]
		removePin(i)
		return b
	}
	return append([]byte(nil), rawMemory(ptr, n)...)
}

func claimString(ptr, n uint32) string {
	if n == 0 {
		return ""
	}
	if len(pins) == 0 {
		// Nothing came from cabi_realloc (the result area, the common
		// case): one copy, straight into the string.
		return string(rawMemory(ptr, n))
	}
	b := claim(ptr, n)
	if len(b) == 0 {
		return ""
	}
	// The claimed buffer is owned by nobody else now: view it as a string.
	return unsafe.String(&b[0], len(b))
}

func findPin(addr uint32) int {
	for i := len(pins) - 1; i >= 0; i-- {
		if pins[i].addr == addr {
			return i
		}
	}
	return -1
}

func removePin(i int) {
	copy(pins[i:], pins[i+1:])
	pins[len(pins)-1] = pin{}
	pins = pins[:len(pins)-1]
}

// releasePins drops every pin made since mark, so the garbage collector can
// reclaim buffers the host allocated but the guest did not claim.
func releasePins(mark int) {
	clear(pins[mark:])
	pins = pins[:mark]
}

func addrOf(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// rawMemory views n bytes of linear memory at addr. Go's address space on wasm
// is the linear memory, so an address from the host is a Go pointer; one past
// the memory traps, which fails only this actor.
func rawMemory(addr, n uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(addr))), n)
}

// exportInit is theater:simple/actor#init:
// (i32 state-is-some, i32 state-ptr, i32 state-len, i32 actor-id-ptr,
// i32 actor-id-len) -> i32 pointer to an initResultArea (see layout.go).
//
// The parameters flatten to 3 (option<list<u8>>) + 2 (tuple<string>) = 5 core
// values, within the 16 that are passed directly.
//
//go:wasmexport theater:simple/actor#init
func exportInit(stateIsSome, statePtr, stateLen, actorIDPtr, actorIDLen uint32) uint32 {
	initKeep = nil
	var state []byte
	switch stateIsSome {
	case 0:
	case 1:
		state = claim(statePtr, stateLen)
	default:
		panic("theater: init: invalid option discriminant for state")
	}
	actorID := claimString(actorIDPtr, actorIDLen)
	// Whatever else the host allocated before this call is not ours to keep.
	releasePins(0)

	var newState []byte
	err := tickSetupError(tickhook.Linked)
	if err == nil {
		err = messagesSetupError(msghook.Linked)
	}
	if err == nil {
		newState, err = callInit(state, stateIsSome == 1, actorID)
	}
	initKeep = storeResult(&initResult, newState, err)
	return uint32(uintptr(unsafe.Pointer(&initResult)))
}

// storeResult writes result<tuple<option<list<u8>>>, string> into area and
// returns the bytes it points at, which must stay reachable until
// post-return.
func storeResult(area *initResultArea, newState []byte, err error) (keep []byte) {
	switch {
	case err != nil:
		msg := []byte(strings.ToValidUTF8(err.Error(), "\uFFFD"))
		*area = initResultArea{isErr: 1, payload: [3]uint32{addrOf(msg), uint32(len(msg)), 0}}
		return msg
	case newState == nil:
		*area = initResultArea{isErr: 0, payload: [3]uint32{0, 0, 0}}
		return nil
	default:
		*area = initResultArea{isErr: 0, payload: [3]uint32{1, addrOf(newState), uint32(len(newState))}}
		return newState
	}
}

// The tick export itself is declared by package ticker, so that only
// ticking actors have it; it calls these through tickhook.
func init() {
	tickhook.Tick = exportTick
	tickhook.PostTick = exportPostTick
}

// exportTick implements troupe:actor/ticker#tick: (i32 state-is-some,
// i32 state-ptr, i32 state-len, i64 now-ms) -> i32 pointer to a
// tickResult, laid out like init's.
func exportTick(stateIsSome, statePtr, stateLen uint32, nowMs uint64) uint32 {
	tickKeep = nil
	var state []byte
	switch stateIsSome {
	case 0:
	case 1:
		state = claim(statePtr, stateLen)
	default:
		panic("theater: tick: invalid option discriminant for state")
	}
	releasePins(0)
	newState, err := callTick(state, stateIsSome == 1, nowMs)
	tickKeep = storeResult(&tickResult, newState, err)
	return uint32(uintptr(unsafe.Pointer(&tickResult)))
}

// exportPostTick implements cabi_post_troupe:actor/ticker#tick.
func exportPostTick(uint32) {
	tickKeep = nil
	tickResult = initResultArea{}
	releasePins(0)
}

// exportPostInit is cabi_post_theater:simple/actor#init: (i32 the pointer
// init returned) -> (). The host calls it once it has copied the result out;
// the guest may then forget everything it handed over.
//
//go:wasmexport cabi_post_theater:simple/actor#init
func exportPostInit(uint32) {
	initKeep = nil
	initResult = initResultArea{}
	releasePins(0)
}
