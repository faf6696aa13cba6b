//go:build wasip1

package theater

import (
	"sync"
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

// callMu serializes runtime calls. Return areas are package-level (they must
// not live on a goroutine stack, which may be copied elsewhere while the host
// is still to write into it), and the pins of one call must not be released
// by another. A goroutine can only get to run during a call if the Go
// scheduler switches inside cabi_realloc (a garbage collection it triggers);
// it then waits here until the outer call has returned, instead of nesting a
// second call inside the first.
var callMu sync.Mutex

// Return areas, used only with callMu held.
var (
	retString  stringArea
	retOption  optionStringArea
	retResult  resultUnitStringArea
	retSysInfo systemInfoArea
)

func getString(fn string) string {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retString = stringArea{}
	switch fn {
	case fnActorID:
		importGetActorID(&retString)
	case fnActorName:
		importGetActorName(&retString)
	case fnTheaterVersion:
		importGetTheaterVersion(&retString)
	default:
		panic("theater: unknown string function " + fn)
	}
	return claimString(retString.ptr, retString.len)
}

func currentTime() uint64 {
	// No lock: nothing is allocated or written to memory.
	return importGetCurrentTime()
}

func getEnv(name string) (string, bool) {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retOption = optionStringArea{}
	importGetEnv(name, &retOption)
	switch retOption.isSome {
	case 0:
		return "", false
	case 1:
		return claimString(retOption.ptr, retOption.len), true
	default:
		panic("theater: get-env returned an invalid option discriminant")
	}
}

func logMessage(level, msg string) error {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retResult = resultUnitStringArea{}
	importLog(level, msg, &retResult)
	return resultError("log")
}

func recordMetric(name string, value float64) error {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retResult = resultUnitStringArea{}
	importRecordMetric(name, value, &retResult)
	return resultError("record-metric")
}

func recordEvent(eventType string, data []byte) error {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retResult = resultUnitStringArea{}
	importRecordEvent(eventType, bytesAsString(data), &retResult)
	return resultError("record-event")
}

func systemInfo() SystemInfo {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
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
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retResult = resultUnitStringArea{}
	var isSome uint32
	if data != nil {
		isSome = 1
	}
	importShutdown(isSome, bytesAsString(data), &retResult)
	return resultError("shutdown")
}

func send(target string, msg []byte) error {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
	retResult = resultUnitStringArea{}
	importSend(target, bytesAsString(msg), &retResult)
	return resultError("send")
}

// request holds callMu while it waits for the response: the guest runs no
// other call meanwhile (the host calls into an actor one call at a time).
func request(target string, msg []byte) ([]byte, error) {
	callMu.Lock()
	defer callMu.Unlock()
	mark := len(pins)
	defer releasePins(mark)
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

// resultError decodes retResult; callMu must be held.
func resultError(fn string) error {
	switch retResult.isErr {
	case 0:
		return nil
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
