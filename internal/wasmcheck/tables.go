package wasmcheck

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
// BoundTables rewrites their table section to declare this maximum: a
// table.grow past it then returns -1 to the guest, as the spec allows.
// (Check refuses a minimum above it.)
const MaxTableElements = 1 << 20

// errNotRewritable means the bytes are not a module BoundTables can read;
// Check or the compiler reports what is wrong with them.
var errNotRewritable = errors.New("not a rewritable module")

// BoundTables returns wasm with every table's maximum at most maxElems
// (declaring one where there is none). Bytes it cannot parse, and a table
// whose minimum is already above maxElems, are returned unchanged for Check
// to refuse; it never reads out of bounds.
func BoundTables(wasm []byte, maxElems uint32) []byte {
	out, err := rewriteTables(wasm, maxElems)
	if err != nil {
		return wasm
	}
	return out
}

func rewriteTables(wasm []byte, maxElems uint32) ([]byte, error) {
	if !bytes.HasPrefix(wasm, header) {
		return nil, errNotRewritable
	}
	pos := len(header)
	for pos < len(wasm) {
		id := wasm[pos]
		size, n, ok := ReadU32(wasm[pos+1:])
		if !ok {
			return nil, errNotRewritable
		}
		start := pos + 1 + n
		end := start + int(size)
		if end > len(wasm) || end < start {
			return nil, errNotRewritable
		}
		if id == secTable {
			content, changed, err := boundTableSection(wasm[start:end], maxElems)
			if err != nil || !changed {
				return wasm, err
			}
			out := make([]byte, 0, len(wasm)+16)
			out = append(out, wasm[:pos]...)
			out = append(out, secTable)
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
	count, n, ok := ReadU32(sec)
	if !ok || count > uint32(len(sec)) {
		return nil, false, errNotRewritable
	}
	out := binary.AppendUvarint(make([]byte, 0, len(sec)+8*int(count)), uint64(count))
	p := n
	changed := false
	for i := uint32(0); i < count; i++ {
		// tabletype: reftype, then limits (0x00 min | 0x01 min max).
		// Anything else (typed function references, table64, shared) is
		// left for Check, which refuses it.
		if p+2 > len(sec) {
			return nil, false, errNotRewritable
		}
		ref, flag := sec[p], sec[p+1]
		if (ref != 0x70 && ref != 0x6f) || flag > 1 {
			return nil, false, errNotRewritable
		}
		p += 2
		minElems, n, ok := ReadU32(sec[p:])
		if !ok || minElems > maxElems {
			return nil, false, errNotRewritable
		}
		p += n
		maxDecl, hasMax := uint32(0), flag == 1
		if hasMax {
			if maxDecl, n, ok = ReadU32(sec[p:]); !ok {
				return nil, false, errNotRewritable
			}
			p += n
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
