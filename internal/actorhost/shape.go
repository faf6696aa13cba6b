package actorhost

import (
	"bytes"

	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// An instance's own Go heap, beyond its linear memory, depends on its
// module's shape. wazero (v1.12) allocates per instance: a []byte header
// per data segment (ModuleInstance.DataInstances: it keeps every segment
// for memory.init, 24 bytes each — 0.9 MiB for a Go module's ~37,000
// segments), a Reference per table element (8 bytes, at the declared
// minimum), a function instance per function an element segment puts in a
// table (24 bytes and its slot in a slice: 32, measured on examples/hello's
// 2,181), a *GlobalInstance per global (8 + 48 bytes) and, per imported
// function, its binding and its slot in the instance's context (about 40
// bytes). The rest is fixed: the module instance, the WASI context, the
// runtime handler's state, the actor itself and its chain bookkeeping,
// and the call stacks of the exports it keeps.
const (
	perDataSegment  = 24
	perTableElement = 8
	perElemFunc     = 32
	perGlobal       = 56
	perImportedFunc = 40
	// instanceBase is the fixed part, measured: an idle WAT actor with a
	// durable chain, none of the above and no kept stacks holds 5.9 KiB of
	// heap (TestMemoryAccountingMatchesReality, which holds the whole
	// estimate to the heap really taken, for it, a ticking one and a Go
	// actor).
	instanceBase = 6 << 10
	// perCallStack is what each api.Function the actor keeps holds
	// (wazevo's call engine, its 10 KiB stack and the rest): a ticking WAT
	// actor keeps two and holds 35 KiB more heap than an idle one.
	perCallStack = 17 << 10
)

// moduleShape is what an instance's heap depends on.
type moduleShape struct {
	dataSegments  uint64
	tableElements uint64
	elemFuncs     uint64
	globals       uint64
}

// readShape reads the counts of the data and global sections and the
// tables' minimum sizes of a module wasmcheck.Check already bounded. It
// never fails: bytes it can't read count as nothing (the compiler rejects
// such modules anyway).
func readShape(wasm []byte) moduleShape {
	var s moduleShape
	const header = 8
	if len(wasm) < header || !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		return s
	}
	pos := header
	for pos < len(wasm) {
		id := wasm[pos]
		size, n, ok := wasmcheck.ReadU32(wasm[pos+1:])
		if !ok {
			return s
		}
		start := pos + 1 + n
		end := start + int(size)
		if end > len(wasm) || end < start {
			return s
		}
		sec := wasm[start:end]
		switch id {
		case 4: // tables
			s.tableElements = tableMinimums(sec)
		case 9: // elements
			s.elemFuncs = elemFuncs(sec)
		case 6: // globals
			if count, _, ok := wasmcheck.ReadU32(sec); ok {
				s.globals = uint64(count)
			}
		case 11: // data
			if count, _, ok := wasmcheck.ReadU32(sec); ok {
				s.dataSegments = uint64(count)
			}
		}
		pos = end
	}
	return s
}

// tableMinimums sums the declared minimum sizes of the table section's
// tables (reftype, then limits: 0x00 min | 0x01 min max).
func tableMinimums(sec []byte) uint64 {
	count, p, ok := wasmcheck.ReadU32(sec)
	if !ok {
		return 0
	}
	var total uint64
	for i := uint32(0); i < count; i++ {
		if p+2 > len(sec) {
			return total
		}
		flag := sec[p+1]
		p += 2
		minElems, n, ok := wasmcheck.ReadU32(sec[p:])
		if !ok {
			return total
		}
		p += n
		total += uint64(minElems)
		if flag == 1 {
			if _, n, ok = wasmcheck.ReadU32(sec[p:]); !ok {
				return total
			}
			p += n
		}
	}
	return total
}

// elemFuncs counts the function indexes of the element section's segments
// in their plain form (flags 0: an offset, then function indexes: what Go
// and WAT modules use); it stops at the first segment of another form, or
// at bytes it can't read.
func elemFuncs(sec []byte) uint64 {
	count, p, ok := wasmcheck.ReadU32(sec)
	if !ok {
		return 0
	}
	var total uint64
	for i := uint32(0); i < count; i++ {
		if p+1 >= len(sec) || sec[p] != 0 {
			return total
		}
		// The offset: i32.const n or global.get n, then end.
		if op := sec[p+1]; op != 0x41 && op != 0x23 {
			return total
		}
		p += 2
		for p < len(sec) && sec[p]&0x80 != 0 {
			p++
		}
		p++
		if p >= len(sec) || sec[p] != 0x0b {
			return total
		}
		p++
		n, k, ok := wasmcheck.ReadU32(sec[min(p, len(sec)):])
		if !ok {
			return total
		}
		p += k
		for j := uint32(0); j < n; j++ {
			_, k, ok := wasmcheck.ReadU32(sec[min(p, len(sec)):])
			if !ok {
				return total
			}
			p += k
		}
		total += uint64(n) // only once read: a count is no bigger than its bytes
	}
	return total
}

// instanceBytes estimates the heap of one instance of a module of this
// shape, with importedFuncs imported functions, keeping stacks call stacks.
func (s moduleShape) instanceBytes(importedFuncs, stacks int) uint64 {
	return instanceBase + uint64(stacks)*perCallStack +
		s.dataSegments*perDataSegment + s.tableElements*perTableElement + s.elemFuncs*perElemFunc +
		s.globals*perGlobal + uint64(importedFuncs)*perImportedFunc
}
