//go:build wasip1

package theater

import (
	"runtime"
	"unsafe"
)

// Imports from theater:simple/runtime, lowered by the canonical ABI.
//
// Flattening rules that decide each core signature: a string or list<u8>
// parameter is (i32 ptr, i32 len); an option<T> parameter is
// (i32 discriminant, ...T flattened); f64 stays f64, u64 becomes i64. A result
// that flattens to more than one core value (every string, option, result and
// record here) is not returned but written to a return area whose address
// the caller passes as a last i32 parameter. Strings and lists the host
// returns are stored in memory it obtains from our cabi_realloc.
//
// Go passes a string parameter of a wasmimport function as (i32 ptr, i32
// len), which is exactly the canonical lowering; list<u8> arguments are passed
// as strings viewing the same bytes.

//go:wasmimport theater:simple/runtime get-actor-id
func importGetActorID(ret *stringArea) // (i32 retptr) -> ()

//go:wasmimport theater:simple/runtime get-actor-name
func importGetActorName(ret *stringArea) // (i32 retptr) -> ()

//go:wasmimport theater:simple/runtime get-current-time
func importGetCurrentTime() uint64 // () -> i64

//go:wasmimport theater:simple/runtime get-env
func importGetEnv(name string, ret *optionStringArea) // (i32 ptr, i32 len, i32 retptr) -> ()

//go:wasmimport theater:simple/runtime log
func importLog(level, message string, ret *resultUnitStringArea) // (i32 i32 i32 i32 i32 retptr) -> ()

//go:wasmimport theater:simple/runtime record-metric
func importRecordMetric(name string, value float64, ret *resultUnitStringArea) // (i32 i32 f64 i32 retptr) -> ()

//go:wasmimport theater:simple/runtime record-event
func importRecordEvent(eventType, data string, ret *resultUnitStringArea) // (i32 i32 i32 i32 i32 retptr) -> ()

//go:wasmimport theater:simple/runtime get-theater-version
func importGetTheaterVersion(ret *stringArea) // (i32 retptr) -> ()

//go:wasmimport theater:simple/runtime get-system-info
func importGetSystemInfo(ret *systemInfoArea) // (i32 retptr) -> ()

//go:wasmimport theater:simple/runtime shutdown
func importShutdown(isSome uint32, data string, ret *resultUnitStringArea) // (i32 is-some, i32 ptr, i32 len, i32 retptr) -> ()

// Imports from theater:simple/message-server-host (wit/theater-message.wit):
// target and message as (ptr, len) each; send's result<_, string> and
// request's result<list<u8>, string> share one layout (12 bytes: the
// discriminant, then the error's or the response's (ptr, len) at +4).

//go:wasmimport theater:simple/message-server-host send
func importSend(target, msg string, ret *resultUnitStringArea) // (i32 i32 i32 i32 i32 retptr) -> ()

//go:wasmimport theater:simple/message-server-host request
func importRequest(target, msg string, ret *resultUnitStringArea) // (i32 i32 i32 i32 i32 retptr) -> ()

// callBusy serializes runtime calls (beginCall, endCall). Return areas are
// package-level (they must not live on a goroutine stack, which may be
// copied elsewhere while the host is still to write into it), the result
// area is overwritten by every call, and the pins of one call must not be
// released by another. A goroutine can only get to run during a call if the
// Go scheduler switches inside cabi_realloc (a garbage collection it
// triggers); it then waits in beginCall until the outer call has returned,
// instead of nesting a second call inside the first.
//
// A plain flag rather than a sync.Mutex: wasm runs one goroutine at a time
// and Go preempts a goroutine only at a function call, so nothing can run
// between beginCall's test and its set; a mutex's atomics are function
// calls on wasm, and every function call into Go code costs a termination
// check under the host's engine.
var callBusy bool

// beginCall waits for the call in progress, if any, to end, takes the
// runtime-call slot and returns the pins mark to hand to endCall.
func beginCall() int {
	for callBusy {
		runtime.Gosched()
	}
	callBusy = true
	return len(pins)
}

// endCall releases the pins made since mark and the runtime-call slot.
func endCall(mark int) {
	if len(pins) > mark {
		releasePins(mark)
	}
	callBusy = false
}

// Return areas, used only between beginCall and endCall.
var (
	retString  stringArea
	retOption  optionStringArea
	retResult  resultUnitStringArea
	retSysInfo systemInfoArea
)

// The hot calls (getString, getEnv, logMessage) end their call with
// explicit endCalls rather than a defer: a defer is one more Go function
// call, and under the host's engine every call into Go code pays a
// termination check that costs about as much as the host's work. Nothing
// between beginCall and endCall panics but the checks of what the host
// wrote, which end the call first; a trap in the import ends the whole
// wasm call, not just this Go function.

// lastStrings holds, per string getter, the value it returned last: a
// value that did not change (an actor's id, name and the theater's version
// never do) is returned again instead of allocating a copy.
var lastStrings [3]string

func getString(fn stringFunc) string {
	mark := beginCall()
	retString = stringArea{}
	switch fn {
	case fnActorID:
		importGetActorID(&retString)
	case fnActorName:
		importGetActorName(&retString)
	case fnTheaterVersion:
		importGetTheaterVersion(&retString)
	default:
		endCall(mark)
		panic("theater: unknown string function")
	}
	last := &lastStrings[fn]
	if n := retString.len; n == 0 || string(rawMemory(retString.ptr, n)) != *last {
		*last = claimString(retString.ptr, n)
	}
	endCall(mark)
	return *last
}

func currentTime() uint64 {
	// No lock: nothing is allocated or written to memory.
	return importGetCurrentTime()
}

// lastEnv is the value getEnv returned last, returned again without
// allocating when the host answers the same (an actor that reads one
// variable in a loop).
var lastEnv string

func getEnv(name string) (string, bool) {
	mark := beginCall()
	retOption = optionStringArea{}
	importGetEnv(name, &retOption)
	switch retOption.isSome {
	case 0:
		endCall(mark)
		return "", false
	case 1:
		if n := retOption.len; n == 0 || string(rawMemory(retOption.ptr, n)) != lastEnv {
			lastEnv = claimString(retOption.ptr, n)
		}
		endCall(mark)
		return lastEnv, true
	default:
		endCall(mark)
		panic("theater: get-env returned an invalid option discriminant")
	}
}

func logMessage(level, msg string) error {
	mark := beginCall()
	retResult = resultUnitStringArea{}
	importLog(level, msg, &retResult)
	err := resultError("log")
	endCall(mark)
	return err
}

func recordMetric(name string, value float64) error {
	defer endCall(beginCall())
	retResult = resultUnitStringArea{}
	importRecordMetric(name, value, &retResult)
	return resultError("record-metric")
}

func recordEvent(eventType string, data []byte) error {
	defer endCall(beginCall())
	retResult = resultUnitStringArea{}
	importRecordEvent(eventType, bytesAsString(data), &retResult)
	return resultError("record-event")
}

func systemInfo() SystemInfo {
	defer endCall(beginCall())
	retSysInfo = systemInfoArea{}
	importGetSystemInfo(&retSysInfo)
	r := &retSysInfo
	return SystemInfo{
		Hostname:        claimString(r.hostname.ptr, r.hostname.len),
		OSType:          claimString(r.osType.ptr, r.osType.len),
		OSRelease:       claimString(r.osRelease.ptr, r.osRelease.len),
		CPUCount:        r.cpuCount,
		MemoryTotal:     r.memoryTotal,
		MemoryAvailable: r.memoryAvailable,
		Uptime:          r.uptime,
	}
}

func shutdown(data []byte) error {
	defer endCall(beginCall())
	retResult = resultUnitStringArea{}
	var isSome uint32
	if data != nil {
		isSome = 1
	}
	importShutdown(isSome, bytesAsString(data), &retResult)
	return resultError("shutdown")
}

func send(target string, msg []byte) error {
	defer endCall(beginCall())
	retResult = resultUnitStringArea{}
	importSend(target, bytesAsString(msg), &retResult)
	return resultError("send")
}

// request holds the runtime-call slot while it waits for the response: the guest runs no
// other call meanwhile (the host calls into an actor one call at a time).
func request(target string, msg []byte) ([]byte, error) {
	defer endCall(beginCall())
	retResult = resultUnitStringArea{}
	importRequest(target, bytesAsString(msg), &retResult)
	switch retResult.isErr {
	case 0:
		return claim(retResult.ptr, retResult.len), nil
	case 1:
		return nil, &RuntimeError{Func: "request", Message: claimString(retResult.ptr, retResult.len)}
	default:
		panic("theater: request returned an invalid result discriminant")
	}
}

// resultError decodes retResult, between beginCall and endCall. Small
// enough to be inlined: ok, the common case, costs no call.
func resultError(fn string) error {
	if retResult.isErr == 0 {
		return nil
	}
	return resultErrorSlow(fn)
}

func resultErrorSlow(fn string) error {
	switch retResult.isErr {
	case 1:
		return &RuntimeError{Func: fn, Message: claimString(retResult.ptr, retResult.len)}
	default:
		panic("theater: " + fn + " returned an invalid result discriminant")
	}
}

// bytesAsString views b as a string without copying, to pass a list<u8> as
// (ptr, len); the host only reads it during the call.
func bytesAsString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
