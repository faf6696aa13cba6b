package actorhost

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// MaxTableElements bounds every table of an actor (8 bytes an element in
// wazero: 8 MiB at most).
//
// wazero allocates a table's declared minimum at instantiation and lets
// table.grow go up to the declared maximum, or to 2^32-1 elements when none
// is declared (32 GiB, which the Go runtime cannot survive) — and there is
// no per-module hook as there is for memory. Toolchains often declare no
// maximum (Go's linker does not), so rather than refusing those modules,
// boundTables rewrites their table section to declare this maximum: a
// table.grow past it then returns -1 to the guest, as the spec allows.
const MaxTableElements = 1 << 20

// errNotRewritable means the bytes are not a module boundTables can read;
// the compiler reports what is wrong with them.
var errNotRewritable = errors.New("not a rewritable module")

// boundTables returns wasm with every table's maximum at most maxElems
// (declaring one where there is none), or an *ActorError when a table's
// minimum is already above it. Bytes it cannot parse are returned
// unchanged for the compiler to reject; it never reads out of bounds.
func boundTables(wasm []byte, maxElems uint32) ([]byte, error) {
	out, err := rewriteTables(wasm, maxElems)
	if errors.Is(err, errNotRewritable) {
		return wasm, nil
	}
	return out, err
}

func rewriteTables(wasm []byte, maxElems uint32) ([]byte, error) {
	const header = 8
	if len(wasm) < header || !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		return nil, errNotRewritable
	}
	pos := header
	for pos < len(wasm) {
		id := wasm[pos]
		size, n, ok := readU32(wasm[pos+1:])
		if !ok {
			return nil, errNotRewritable
		}
		start := pos + 1 + n
		end := start + int(size)
		if end > len(wasm) || end < start {
			return nil, errNotRewritable
		}
		if id == 4 { // the table section
			content, changed, err := boundTableSection(wasm[start:end], maxElems)
			if err != nil || !changed {
				return wasm, err
			}
			out := make([]byte, 0, len(wasm)+16)
			out = append(out, wasm[:pos]...)
			out = append(out, 4)
			out = binary.AppendUvarint(out, uint64(len(content)))
			out = append(out, content...)
			return append(out, wasm[end:]...), nil
		}
		pos = end
	}
	return wasm, nil
}

// boundTableSection rewrites the table section's content.
func boundTableSection(sec []byte, maxElems uint32) ([]byte, bool, error) {
	count, n, ok := readU32(sec)
	if !ok || count > uint32(len(sec)) {
		return nil, false, errNotRewritable
	}
	out := binary.AppendUvarint(make([]byte, 0, len(sec)+8*int(count)), uint64(count))
	p := n
	changed := false
	for i := uint32(0); i < count; i++ {
		// tabletype: reftype, then limits (0x00 min | 0x01 min max).
		// Anything else (typed function references, table64, shared) is
		// left for the compiler, which rejects what it does not support.
		if p+2 > len(sec) {
			return nil, false, errNotRewritable
		}
		ref, flag := sec[p], sec[p+1]
		if (ref != 0x70 && ref != 0x6f) || flag > 1 {
			return nil, false, errNotRewritable
		}
		p += 2
		minElems, n, ok := readU32(sec[p:])
		if !ok {
			return nil, false, errNotRewritable
		}
		p += n
		maxDecl, hasMax := uint32(0), flag == 1
		if hasMax {
			if maxDecl, n, ok = readU32(sec[p:]); !ok {
				return nil, false, errNotRewritable
			}
			p += n
		}
		if minElems > maxElems {
			return nil, false, newActorError(ReasonInvalidModule, "compile",
				"table %d declares %d elements, more than the %d an actor may have", i, minElems, maxElems)
		}
		newMax := maxDecl
		if !hasMax || maxDecl > maxElems {
			newMax, changed = maxElems, true
		}
		out = append(out, ref, 1)
		out = binary.AppendUvarint(out, uint64(minElems))
		out = binary.AppendUvarint(out, uint64(newMax))
	}
	if p != len(sec) {
		return nil, false, errNotRewritable
	}
	return out, changed, nil
}

// readU32 decodes an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func readU32(b []byte) (v uint32, n int, ok bool) {
	var x uint64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, false
		}
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if x > 0xffffffff {
				return 0, 0, false
			}
			return uint32(x), i + 1, true
		}
	}
	return 0, 0, false
}
