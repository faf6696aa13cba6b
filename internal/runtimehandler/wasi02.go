package runtimehandler

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// WASI 0.2 functions a component's main module imports directly, without
// the preview1 adapter in between: componentize-js's main module imports
// about fifty of them (wasi:io, wasi:cli, wasi:clocks, wasi:random,
// wasi:filesystem, ...), most of which an actor never calls. The host
// serves what an actor needs and what preview1 already gives a Go actor —
// random bytes and numbers, the wall and monotonic clocks, stdout and stderr
// into the actor's log — from the same sources as preview1 (crypto/rand,
// the system clocks, the LogWriters). Every other function is a host
// function of the type the module imports that traps, saying
// "<interface>#<function> is not available to actors": the module links,
// and the actor fails clearly only if it really calls one.
//
// Like preview1's, these calls are not recorded in the chain (except what
// stdout and stderr write, which becomes LogEvents).

// WASIImport is one WASI 0.2 function a module imports: the interface and
// function as the component imports them, and the core type the module
// imports it with.
type WASIImport struct {
	// Interface is the versioned interface, e.g. "wasi:random/random@0.2.12".
	Interface string
	// Func is the function's name in it: "get-random-u64",
	// "[method]output-stream.write", "[resource-drop]output-stream".
	Func string
	abi.Signature
}

// ExportName is the name the host module exports the function under:
// "<interface>#<function>".
func (w WASIImport) ExportName() string { return w.Interface + "#" + w.Func }

// UnavailableError is what a WASI 0.2 function the host does not serve
// traps with.
type UnavailableError struct {
	Interface, Func string
}

func (e *UnavailableError) Error() string {
	return e.Interface + "#" + e.Func + " is not available to actors"
}

// wasiFunc is a WASI 0.2 function the host serves.
type wasiFunc struct {
	sig abi.Signature
	fn  func(c *call, stack []uint64)
}

var (
	i32, i64 = abi.I32, abi.I64
	sig      = func(params, results []api.ValueType) abi.Signature {
		return abi.Signature{Params: params, Results: results}
	}
	types = func(t ...api.ValueType) []api.ValueType { return t }
)

// The layouts of the results written through a return pointer.
var (
	// list<u8>: ptr @0, len @4.
	layoutList = abi.Layout{Size: 8, Align: 4}
	// tuple<u64, u64> (insecure-seed).
	layoutU64Pair = abi.Layout{Size: 16, Align: 8}
	// datetime { seconds: u64 @0, nanoseconds: u32 @8 }.
	layoutDatetime = abi.Layout{Size: 16, Align: 8}
	// result<_, stream-error>: discriminant @0, the error @4.
	layoutStreamResult = abi.Layout{Size: 12, Align: 4}
	// result<u64, stream-error>: discriminant @0, the u64 or error @8.
	layoutStreamResultU64 = abi.Layout{Size: 16, Align: 8}
)

// Handles of the output streams get-stdout and get-stderr return: the
// guest only hands them back, so fixed, non-zero numbers do.
const (
	stdoutHandle = 1
	stderrHandle = 2
)

// maxRandomBytes bounds one get-random-bytes: Web Crypto's
// getRandomValues allows 65,536; a guest asking for gigabytes traps.
const maxRandomBytes = 1 << 20

// maxStreamWrite is what check-write permits and the most one write or
// blocking-write-and-flush may write, as WASI 0.2 has it for the latter.
const maxStreamWrite = 4096

// wasiFuncs are the served functions by unversioned interface and name.
var wasiFuncs = map[string]map[string]wasiFunc{
	"wasi:random/random": {
		"get-random-bytes": {sig(types(i64, i32), nil), randomBytes},
		"get-random-u64":   {sig(nil, types(i64)), randomU64},
	},
	"wasi:random/insecure": {
		"get-insecure-random-bytes": {sig(types(i64, i32), nil), randomBytes},
		"get-insecure-random-u64":   {sig(nil, types(i64)), randomU64},
	},
	"wasi:random/insecure-seed": {
		"insecure-seed": {sig(types(i32), nil), insecureSeed},
	},
	"wasi:clocks/monotonic-clock": {
		"now":        {sig(nil, types(i64)), monotonicNow},
		"resolution": {sig(nil, types(i64)), func(_ *call, stack []uint64) { stack[0] = 1 }},
	},
	"wasi:clocks/wall-clock": {
		"now":        {sig(types(i32), nil), wallNow},
		"resolution": {sig(types(i32), nil), wallResolution},
	},
	"wasi:cli/stdout": {
		"get-stdout": {sig(nil, types(i32)), func(_ *call, stack []uint64) { stack[0] = stdoutHandle }},
	},
	"wasi:cli/stderr": {
		"get-stderr": {sig(nil, types(i32)), func(_ *call, stack []uint64) { stack[0] = stderrHandle }},
	},
	"wasi:io/streams": {
		"[method]output-stream.check-write":              {sig(types(i32, i32), nil), streamCheckWrite},
		"[method]output-stream.write":                    {sig(types(i32, i32, i32, i32), nil), streamWrite},
		"[method]output-stream.blocking-write-and-flush": {sig(types(i32, i32, i32, i32), nil), streamWrite},
		"[method]output-stream.flush":                    {sig(types(i32, i32), nil), streamFlush},
		"[method]output-stream.blocking-flush":           {sig(types(i32, i32), nil), streamFlush},
		"[resource-drop]output-stream":                   {sig(types(i32), nil), streamDrop},
	},
}

// WASIServed reports whether the host serves interface#fn (the interface
// with or without its version) rather than trapping.
func WASIServed(iface, fn string) bool {
	_, ok := wasiFuncs[unversioned(iface)][fn]
	return ok
}

// IsWASI02 reports whether an interface name is a WASI 0.2 one
// ("wasi:<package>/<interface>@0.2.<patch>").
func IsWASI02(iface string) bool {
	i := strings.LastIndexByte(iface, '@')
	return strings.HasPrefix(iface, "wasi:") && i > 0 && strings.HasPrefix(iface[i+1:], "0.2.")
}

func unversioned(iface string) string {
	if i := strings.LastIndexByte(iface, '@'); i >= 0 {
		return iface[:i]
	}
	return iface
}

// InstantiateWASI instantiates, in r under the module name name, a host
// module exporting each of imports as its ExportName: the served ones
// (whose core type must then be the one the host serves, or the module is
// refused) and a trapping function of the imported type for the others.
// The caller closes it when no module that imports it runs any more.
func InstantiateWASI(ctx context.Context, r wazero.Runtime, name string, imports []WASIImport) (api.Module, error) {
	b := r.NewHostModuleBuilder(name)
	seen := map[string]bool{}
	for _, imp := range imports {
		export := imp.ExportName()
		if seen[export] {
			continue
		}
		seen[export] = true
		var fn api.GoModuleFunc
		if served, ok := wasiFuncs[unversioned(imp.Interface)][imp.Func]; ok {
			if !served.sig.Equal(imp.Signature) {
				return nil, fmt.Errorf("imports %s with core type %s, the host serves it as %s", export, imp.Signature, served.sig)
			}
			fn = serveWASI(export, served.fn)
		} else {
			fn = unavailable(imp.Interface, imp.Func)
		}
		b.NewFunctionBuilder().WithGoModuleFunction(fn, imp.Params, imp.Results).Export(export)
	}
	m, err := b.Instantiate(ctx)
	if err != nil {
		return nil, fmt.Errorf("instantiating the WASI 0.2 host module %s: %w", name, err)
	}
	return m, nil
}

func serveWASI(name string, fn func(c *call, stack []uint64)) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		c := begin(ctx, name, mod)
		fn(&c, stack)
	}
}

func unavailable(iface, fn string) api.GoModuleFunc {
	err := &UnavailableError{Interface: iface, Func: fn}
	return func(context.Context, api.Module, []uint64) { panic(err) }
}

// get-random-bytes: func(len: u64) -> list<u8>
//
//	core: (i64 len, i32 retptr) -> ()
func randomBytes(c *call, stack []uint64) {
	n, retptr := stack[0], u32(stack[1])
	c.checkRetptr(retptr, layoutList)
	if n > maxRandomBytes {
		trap(c.fn, "asks for "+strconv.FormatUint(n, 10)+" random bytes, more than the "+strconv.Itoa(maxRandomBytes)+" allowed", nil)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, buf); err != nil {
		trap(c.fn, "reading random bytes", err)
	}
	ptr := c.alloc(uint32(n), 1)
	if !c.memory().Write(ptr, buf) {
		trap(c.fn, "writing the random bytes to guest memory", nil)
	}
	c.storePair(retptr, 0, ptr, uint32(n))
}

// get-random-u64: func() -> u64
func randomU64(c *call, stack []uint64) {
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		trap(c.fn, "reading random bytes", err)
	}
	stack[0] = binary.LittleEndian.Uint64(b[:])
}

// insecure-seed: func() -> tuple<u64, u64>
//
//	core: (i32 retptr) -> ()
func insecureSeed(c *call, stack []uint64) {
	retptr := u32(stack[0])
	c.checkRetptr(retptr, layoutU64Pair)
	var b [16]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		trap(c.fn, "reading random bytes", err)
	}
	c.store(retptr, 0, b[:])
}

// monotonicBase is the origin of the monotonic clock, as preview1's
// (WithSysNanotime) counts from the process's.
var monotonicBase = time.Now()

// monotonic-clock.now: func() -> instant (u64 nanoseconds)
func monotonicNow(_ *call, stack []uint64) {
	stack[0] = uint64(time.Since(monotonicBase).Nanoseconds())
}

// wall-clock.now: func() -> datetime
//
//	core: (i32 retptr) -> ()
func wallNow(c *call, stack []uint64) {
	now := time.Now()
	storeDatetime(c, u32(stack[0]), uint64(max(now.Unix(), 0)), uint32(now.Nanosecond()))
}

// wall-clock.resolution: func() -> datetime (1 ns)
func wallResolution(c *call, stack []uint64) { storeDatetime(c, u32(stack[0]), 0, 1) }

func storeDatetime(c *call, retptr uint32, seconds uint64, nanos uint32) {
	c.checkRetptr(retptr, layoutDatetime)
	var b [12]byte
	binary.LittleEndian.PutUint64(b[0:], seconds)
	binary.LittleEndian.PutUint32(b[8:], nanos)
	c.store(retptr, 0, b[:])
}

// stream returns the log writer of an output-stream handle.
func (c *call) stream(handle uint32) io.Writer {
	level := ""
	switch handle {
	case stdoutHandle:
		level = "info"
	case stderrHandle:
		level = "error"
	default:
		trap(c.fn, "output-stream handle "+strconv.FormatUint(uint64(handle), 10)+" is not one the host gave (stdout or stderr)", nil)
	}
	return c.a.streamWriter(handle, level)
}

// streamWriter returns the actor's writer of a WASI 0.2 output stream,
// created on first use: a LogWriter, as preview1's stdout and stderr are.
func (a *Actor) streamWriter(handle uint32, level string) io.Writer {
	a.mu.Lock()
	w := a.streams[handle]
	a.mu.Unlock()
	if w == nil {
		w = a.LogWriter(level)
		a.mu.Lock()
		if a.streams[handle] == nil {
			a.streams[handle] = w
		}
		w = a.streams[handle]
		a.mu.Unlock()
	}
	return w
}

// output-stream.check-write: func() -> result<u64, stream-error>
//
//	core: (i32 self, i32 retptr) -> ()
func streamCheckWrite(c *call, stack []uint64) {
	self, retptr := u32(stack[0]), u32(stack[1])
	c.checkRetptr(retptr, layoutStreamResultU64)
	c.stream(self)
	var b [16]byte // ok (0), then the u64 at +8
	binary.LittleEndian.PutUint64(b[8:], maxStreamWrite)
	c.store(retptr, 0, b[:])
}

// output-stream.write and blocking-write-and-flush:
// func(contents: list<u8>) -> result<_, stream-error>
//
//	core: (i32 self, i32 ptr, i32 len, i32 retptr) -> ()
//
// The bytes become the actor's log lines. More than check-write permits
// traps, as WASI 0.2 says a write past the permit does.
func streamWrite(c *call, stack []uint64) {
	self, ptr, n, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3])
	c.checkRetptr(retptr, layoutStreamResult)
	w := c.stream(self)
	if n > maxStreamWrite {
		trap(c.fn, "writes "+strconv.FormatUint(uint64(n), 10)+" bytes, more than the "+strconv.Itoa(maxStreamWrite)+" check-write permits", nil)
	}
	// A copy: the log writer may keep a partial line.
	data := append([]byte(nil), c.view("contents", ptr, n)...)
	if _, err := w.Write(data); err != nil {
		trap(c.fn, "writing to the actor's log", err)
	}
	c.storeResultOK(retptr)
}

// output-stream.flush and blocking-flush: func() -> result<_, stream-error>
//
//	core: (i32 self, i32 retptr) -> ()
func streamFlush(c *call, stack []uint64) {
	self, retptr := u32(stack[0]), u32(stack[1])
	c.checkRetptr(retptr, layoutStreamResult)
	c.stream(self)
	c.storeResultOK(retptr)
}

// [resource-drop]output-stream: the handles are fixed; dropping one ends
// nothing (a partial line is written when the actor stops).
func streamDrop(c *call, stack []uint64) { c.stream(u32(stack[0])) }
