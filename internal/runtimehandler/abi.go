package runtimehandler

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// TrapError is the value a host function of this module panics with when the
// guest broke the canonical ABI (a pointer or length outside its memory, a
// misaligned return pointer, a bogus cabi_realloc answer, a missing export)
// or when the call can't be recorded. wazero recovers it and fails the
// guest's call with an error that wraps it, so the engine can find it with
// errors.As (var te *TrapError; errors.As(err, &te)) and report a clear
// reason; only that actor traps, the host carries on.
type TrapError struct {
	// Func is the runtime function that trapped, e.g. "get-env", or the
	// WASI 0.2 function with its interface,
	// "wasi:io/streams@0.2.12#[method]output-stream.write".
	Func string
	// Reason says what the guest did wrong, or what failed.
	Reason string
	// Err is the underlying error, if any (e.g. the trap inside cabi_realloc).
	Err error
}

func (e *TrapError) Error() string {
	s := e.Func + ": " + e.Reason
	if !strings.Contains(e.Func, "#") {
		// A runtime function; a WASI 0.2 one is named with its interface.
		s = ModuleName + "#" + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TrapError) Unwrap() error { return e.Err }

// trap aborts the current host call; wazero turns the panic into a call
// error of this actor (see TrapError).
func trap(fn, reason string, err error) {
	panic(&TrapError{Func: fn, Reason: reason, Err: err})
}

// errNoMemory is wrapped when the guest exports no linear memory.
var errNoMemory = errors.New(`the actor exports no "memory"`)

// memSize returns the size of mem in bytes as a uint64, correct even for a
// memory of the maximum 65536 pages, where api.Memory.Size overflows to 0.
func memSize(mem api.Memory) uint64 {
	if s := mem.Size(); s != 0 {
		return uint64(s)
	}
	pages, _ := mem.Grow(0)
	return uint64(pages) * 65536
}

// inBounds reports whether [ptr, ptr+n) lies inside a memory of size bytes;
// uint64 arithmetic so that ptr+n can't wrap around.
func inBounds(size uint64, ptr, n uint32) bool {
	return uint64(ptr)+uint64(n) <= size
}

// call is the per-call state shared by the helpers below: which function is
// running, in which module, for which actor.
type call struct {
	ctx context.Context
	fn  string
	mod api.Module
	mem api.Memory
	a   *Actor
	// areaUsed is how much of the guest's result area this call's results
	// took already: the results of one call lie one after another.
	areaUsed uint32
}

// begin resolves the actor bound to ctx, trapping when there is none, and
// refuses a call made from inside the guest's
// cabi_realloc: the canonical ABI forbids that (may_leave is false during
// realloc), and allowing it would let a guest recurse through the host
// until the Go stack overflows, which no recover can catch.
func begin(ctx context.Context, fn string, mod api.Module) call {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	if a == nil {
		trap(fn, "no actor is bound to the call's context (the engine must call the guest with runtimehandler.WithActor)", nil)
	}
	if a.inRealloc {
		trap(fn, "called from inside cabi_realloc (or "+resultAreaName+"), which the canonical ABI forbids", nil)
	}
	c := call{ctx: ctx, fn: fn, mod: mod, a: a}
	return c
}

// memory returns the guest's exported "memory", trapping when there is
// none. It is resolved once per module and cached on the actor: the
// canonical ABI names the export, and api.Module.Memory can't be used to
// tell, since it returns a non-nil interface holding a nil pointer for a
// module without memory.
func (c *call) memory() api.Memory {
	if c.mem != nil {
		return c.mem
	}
	a := c.a
	if a.memMod != c.mod {
		a.memMod, a.mem = c.mod, c.mod.ExportedMemory("memory")
	}
	if a.mem == nil {
		trap(c.fn, "reading guest memory", errNoMemory)
	}
	c.mem = a.mem
	return c.mem
}

// view returns guest memory [ptr, ptr+n) without copying. A range outside
// memory traps, as the canonical ABI's lifting does; nothing is allocated
// for a huge n. The slice aliases guest memory: it is valid only until the
// guest runs again (cabi_realloc may grow and move memory), so callers copy
// what they keep.
func (c *call) view(what string, ptr, n uint32) []byte {
	mem := c.memory()
	size := memSize(mem)
	if !inBounds(size, ptr, n) {
		trap(c.fn, what+" (ptr "+strconv.FormatUint(uint64(ptr), 10)+
			", len "+strconv.FormatUint(uint64(n), 10)+") lies outside guest memory of "+
			strconv.FormatUint(size, 10)+" bytes", nil)
	}
	b, ok := mem.Read(ptr, n)
	if !ok { // unreachable after the check above, kept so a wazero change can't panic us
		trap(c.fn, what+" lies outside guest memory", nil)
	}
	return b
}

// checkRetptr validates the return pointer for a result laid out as l
// before the call has any effect, so that a bad pointer traps without side
// effects.
func (c *call) checkRetptr(retptr uint32, l abi.Layout) {
	size, align := l.Size, l.Align
	if retptr%align != 0 {
		trap(c.fn, "return pointer "+strconv.FormatUint(uint64(retptr), 10)+
			" is not aligned to "+strconv.FormatUint(uint64(align), 10), nil)
	}
	if !inBounds(memSize(c.memory()), retptr, size) {
		trap(c.fn, "return area (ptr "+strconv.FormatUint(uint64(retptr), 10)+", "+
			strconv.FormatUint(uint64(size), 10)+" bytes) lies outside guest memory", nil)
	}
}

// reallocName is the allocator export the canonical ABI requires.
var reallocName = abi.Realloc.Name

// alloc asks the guest's cabi_realloc(0, 0, align, size) for a fresh region
// and validates the answer: aligned, and wholly inside memory as it is after
// the call (the allocator may have grown it). Anything else traps this
// actor. The guest runs during this call, so every earlier view of its
// memory is stale afterwards.
func (c *call) alloc(size, align uint32) uint32 {
	a := c.a
	if a.reallocMod != c.mod {
		a.reallocMod, a.realloc = c.mod, c.mod.ExportedFunction(reallocName)
	}
	fn := a.realloc
	if fn == nil {
		trap(c.fn, "the actor exports no "+reallocName+", which returning a string or list requires", nil)
	}
	stack := a.reallocStack[:]
	stack[0], stack[1], stack[2], stack[3] = 0, 0, uint64(align), uint64(size)
	a.inRealloc = true
	err := fn.CallWithStack(c.ctx, stack)
	a.inRealloc = false
	if err != nil {
		trap(c.fn, reallocName+" failed", err)
	}
	ptr := uint32(stack[0])
	if ptr%align != 0 {
		trap(c.fn, reallocName+" returned "+strconv.FormatUint(uint64(ptr), 10)+
			", which is not aligned to "+strconv.FormatUint(uint64(align), 10), nil)
	}
	// The memory object stays the same across growth in wazero; re-read its size.
	if !inBounds(memSize(c.memory()), ptr, size) {
		trap(c.fn, reallocName+" returned "+strconv.FormatUint(uint64(ptr), 10)+
			" for "+strconv.FormatUint(uint64(size), 10)+" bytes, which lies outside guest memory", nil)
	}
	return ptr
}

// lowerString copies s into the guest's result area when it has one and s
// fits there (borrowed), otherwise into a fresh guest allocation (align 1,
// as strings and list<u8> are), and returns its pointer and length.
func (c *call) lowerString(s string) (ptr, n uint32) {
	if uint64(len(s)) > maxLowerBytes {
		trap(c.fn, "result of "+strconv.Itoa(len(s))+" bytes is too large to hand to the guest", nil)
	}
	n = uint32(len(s))
	var ok bool
	if ptr, ok = c.inArea(n); !ok {
		ptr = c.alloc(n, 1)
	}
	if n > 0 && !c.memory().WriteString(ptr, s) {
		trap(c.fn, "writing the result to guest memory", nil)
	}
	return ptr, n
}

// maxLowerBytes bounds a string or list handed to the guest; the canonical
// ABI's limit is 2^31-1, ours is far lower because nothing the host returns
// should ever be near it.
const maxLowerBytes = 64 << 20

// store writes b at retptr+off. checkRetptr validated the return area and
// wasm memory never shrinks, so the write can't fail; the check stays so
// that a future engine can't turn a bug into a panic.
func (c *call) store(retptr, off uint32, b []byte) {
	if !c.memory().Write(retptr+off, b) {
		trap(c.fn, "writing the result to the return area", nil)
	}
}

// storePair writes a string's (ptr, len) at retptr+off, as one u64 (ptr
// in the low half: little-endian), so that no buffer escapes through the
// api.Memory interface to the heap.
func (c *call) storePair(retptr, off, ptr, n uint32) {
	if !c.memory().WriteUint64Le(retptr+off, uint64(ptr)|uint64(n)<<32) {
		trap(c.fn, "writing the result to the return area", nil)
	}
}

// storeResultOK writes result<_, string>::ok: discriminant byte 0. Only the
// discriminant is written; the payload bytes are left as they were, as in
// the canonical ABI.
func (c *call) storeResultOK(retptr uint32) {
	if !c.memory().WriteByte(retptr, 0) {
		trap(c.fn, "writing the result to the return area", nil)
	}
}

// storeResultErr writes result<_, string>::err(msg): discriminant 1 at +0,
// the string's (ptr, len) at +4/+8.
func (c *call) storeResultErr(retptr uint32, msg string) {
	ptr, n := c.lowerString(msg)
	if !c.memory().WriteByte(retptr, 1) {
		trap(c.fn, "writing the result to the return area", nil)
	}
	c.storePair(retptr, abi.ResultPayload, ptr, n)
}
