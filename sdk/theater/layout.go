package theater

import (
	"structs"
	"unsafe"
)

// These records mirror, byte for byte, the memory the canonical ABI uses for
// results that do not fit in one core value. They are shared by the wasip1
// glue and by the layout test, which runs on any platform: structs.HostLayout
// makes Go lay them out like C, so the offsets checked natively are the
// offsets used in wasm.

// stringArea is the return area of a function returning string:
// ptr u32 at +0, len u32 at +4 (size 8, align 4).
type stringArea struct {
	_   structs.HostLayout
	ptr uint32
	len uint32
}

// optionStringArea is the return area of get-env, option<string>:
// discriminant u8 at +0 (0 none, 1 some), then the payload at the string's
// alignment (4): ptr at +4, len at +8 (size 12, align 4).
type optionStringArea struct {
	_      structs.HostLayout
	isSome uint8
	_      [3]uint8
	ptr    uint32
	len    uint32
}

// resultUnitStringArea is the return area of result<_, string> (log,
// record-metric, record-event, shutdown): discriminant u8 at +0 (0 ok, 1 err),
// the error string at +4/+8 (size 12, align 4). The ok case has no payload.
type resultUnitStringArea struct {
	_     structs.HostLayout
	isErr uint8
	_     [3]uint8
	ptr   uint32
	len   uint32
}

// systemInfoArea is the return area of get-system-info. Record fields are laid
// out in order, each at its own alignment: the three strings (8 bytes, align
// 4) at 0, 8, 16; cpu-count u32 at 24; the u64 fields need align 8, so 28 is
// padded to 32: memory-total 32, memory-available 40, uptime 48. Size 56, align
// 8 (the largest field alignment).
type systemInfoArea struct {
	_               structs.HostLayout
	hostname        stringArea
	osType          stringArea
	osRelease       stringArea
	cpuCount        uint32
	_               uint32
	memoryTotal     uint64
	memoryAvailable uint64
	uptime          uint64
}

// initResultArea is what theater:simple/actor#init returns a pointer to:
// result<tuple<option<list<u8>>>, string>.
//
// Flattened, the result is [i32 discriminant] ++ join([i32 i32 i32] for
// ok's option<list<u8>>, [i32 i32] for err's string) = 4 core values, more than
// the one an export may return, so the callee returns a pointer to memory it
// owns. In memory: discriminant u8 at +0 (0 ok, 1 err); the payload starts at
// the largest case alignment (4), so at +4:
//
//	ok:  option discriminant u8 at +4 (0 none, 1 some), list ptr at +8, len at +12
//	err: string ptr at +4, len at +8
//
// Size 16, align 4. payload[0] is therefore the option discriminant (written as
// a whole u32, which stores the u8 at +4 and zeroes the padding) or the error
// pointer.
type initResultArea struct {
	_       structs.HostLayout
	isErr   uint8
	_       [3]uint8
	payload [3]uint32
}

// requestResultArea is what message-server-client#handle-request returns a
// pointer to: result<tuple<option<list<u8>>, tuple<option<list<u8>>>>,
// string>. Discriminant u8 at +0; the payload at +4:
//
//	ok:  the state's option u8 at +4, ptr +8, len +12; the response's
//	     option u8 at +16, ptr +20, len +24
//	err: string ptr at +4, len at +8
//
// Size 28, align 4.
type requestResultArea struct {
	_       structs.HostLayout
	isErr   uint8
	_       [3]uint8
	payload [6]uint32
}

// Compile-time checks of the sizes and offsets the canonical ABI prescribes:
// indexing a one-element array with anything but 0 does not compile, so a
// drifting layout breaks the build rather than an actor.
var (
	_ = [1]struct{}{}[unsafe.Sizeof(stringArea{})-8]
	_ = [1]struct{}{}[unsafe.Sizeof(optionStringArea{})-12]
	_ = [1]struct{}{}[unsafe.Offsetof(optionStringArea{}.ptr)-4]
	_ = [1]struct{}{}[unsafe.Sizeof(resultUnitStringArea{})-12]
	_ = [1]struct{}{}[unsafe.Offsetof(resultUnitStringArea{}.ptr)-4]
	_ = [1]struct{}{}[unsafe.Sizeof(systemInfoArea{})-56]
	_ = [1]struct{}{}[unsafe.Offsetof(systemInfoArea{}.cpuCount)-24]
	_ = [1]struct{}{}[unsafe.Offsetof(systemInfoArea{}.memoryTotal)-32]
	_ = [1]struct{}{}[unsafe.Offsetof(systemInfoArea{}.uptime)-48]
	_ = [1]struct{}{}[unsafe.Sizeof(initResultArea{})-16]
	_ = [1]struct{}{}[unsafe.Offsetof(initResultArea{}.payload)-4]
	_ = [1]struct{}{}[unsafe.Sizeof(requestResultArea{})-28]
	_ = [1]struct{}{}[unsafe.Offsetof(requestResultArea{}.payload)-4]
)
