package runtimehandler

import (
	"encoding/binary"
	"strconv"

	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// The result area (wit/troupe-result-area.wit) is an opt-in buffer of the
// guest's own that small string results are written into, borrowed, instead
// of into memory from cabi_realloc. Handing a string back through
// cabi_realloc is a nested call into wasm, which costs more than the runtime
// call itself (with close-on-context-done wazero starts a goroutine for
// every call into the guest); writing into the area is a copy. Guests that
// free what the host returns (wit-bindgen's) don't export it and never get
// a pointer into it.

// Bounds the host puts on a guest's result area.
const (
	// maxResultArea bounds the capacity the host uses: small results are
	// what the area is for, and a bounded area keeps every check cheap.
	maxResultArea = 64 << 10
	// resultAreaAlign is the alignment the area's address must have, so a
	// later list of wider elements could be placed at its start.
	resultAreaAlign = 8
)

// resultArea is a guest's registered area; cap 0 means none.
type resultArea struct {
	ptr, cap uint32
}

// resultAreaName is the export that registers the area.
var resultAreaName = abi.ResultArea.Name

// area returns the guest's result area, resolving it on the first use in
// each module instance: looked up, called once (guarded like cabi_realloc:
// the guest may not call the host from inside it), and validated. A guest
// without the export has none. An area that breaks the contract traps this
// call, and every later one that returns a string, whichever runtime
// function needed it: only this actor fails.
func (c *call) area() resultArea {
	a := c.a
	if a.areaMod == c.mod {
		return a.area
	}
	var ar resultArea
	if fn := c.mod.ExportedFunction(resultAreaName); fn != nil && !a.noResultArea {
		// A bad area traps here, before the module is marked resolved:
		// every later call that needs the area traps the same way.
		ar = c.registerArea(fn)
	}
	a.areaMod, a.area = c.mod, ar
	return ar
}

// registerArea calls the guest's result-area export and validates what it
// says: the return pointer aligned and inside memory, the area's address a
// multiple of resultAreaAlign, its capacity 1 to maxResultArea bytes, and
// the whole area inside memory.
func (c *call) registerArea(fn api.Function) resultArea {
	var stack [1]uint64
	c.a.inRealloc = true
	err := fn.CallWithStack(c.ctx, stack[:])
	c.a.inRealloc = false
	if err != nil {
		trap(c.fn, resultAreaName+" failed", err)
	}
	retptr := uint32(stack[0])
	l := abi.ResultAreaInfo
	size := memSize(c.memory())
	if retptr%l.Align != 0 || !inBounds(size, retptr, l.Size) {
		trap(c.fn, resultAreaName+" returned "+strconv.FormatUint(uint64(retptr), 10)+
			", which is not an aligned 8-byte area inside guest memory", nil)
	}
	b, ok := c.memory().Read(retptr, l.Size)
	if !ok {
		trap(c.fn, resultAreaName+" returned a pointer outside guest memory", nil)
	}
	ar := resultArea{ptr: binary.LittleEndian.Uint32(b[0:]), cap: binary.LittleEndian.Uint32(b[4:])}
	switch {
	case ar.ptr%resultAreaAlign != 0:
		trap(c.fn, resultAreaName+": the area's address "+strconv.FormatUint(uint64(ar.ptr), 10)+
			" is not aligned to "+strconv.Itoa(resultAreaAlign), nil)
	case ar.cap == 0 || ar.cap > maxResultArea:
		trap(c.fn, resultAreaName+": the area's capacity "+strconv.FormatUint(uint64(ar.cap), 10)+
			" is not within 1 to "+strconv.Itoa(maxResultArea)+" bytes", nil)
	case !inBounds(size, ar.ptr, ar.cap):
		trap(c.fn, resultAreaName+": the area (ptr "+strconv.FormatUint(uint64(ar.ptr), 10)+", "+
			strconv.FormatUint(uint64(ar.cap), 10)+" bytes) lies outside guest memory of "+
			strconv.FormatUint(size, 10)+" bytes", nil)
	}
	if post := c.mod.ExportedFunction(abi.ResultAreaPost.Name); post != nil {
		stack[0] = uint64(retptr)
		c.a.inRealloc = true
		err := post.CallWithStack(c.ctx, stack[:])
		c.a.inRealloc = false
		if err != nil {
			trap(c.fn, abi.ResultAreaPost.Name+" failed", err)
		}
	}
	return ar
}

// inArea places n bytes in the result area after what this call placed
// there already, returning their address; false when the guest has no area
// or they don't fit.
func (c *call) inArea(n uint32) (uint32, bool) {
	ar := c.area()
	if ar.cap == 0 || uint64(c.areaUsed)+uint64(n) > uint64(ar.cap) {
		return 0, false
	}
	ptr := ar.ptr + c.areaUsed
	// Memory never shrinks, so the area validated at registration is still
	// inside it; checked again because it is cheap and a future engine may
	// differ.
	if !inBounds(memSize(c.memory()), ptr, n) {
		trap(c.fn, "the result area lies outside guest memory", nil)
	}
	c.areaUsed += n
	return ptr, true
}
