package testutil

import "encoding/binary"

// The generators below build modules of one function, () -> (), in the
// shapes that cost wazero's compiler most, for the tests of the
// structural bounds (internal/wasmcheck) and of the engine.

// FuncModule returns a module of one function, () -> (), whose body declares
// locals i64 locals and runs code (without the body's final end).
func FuncModule(code []byte, locals uint32) []byte { return FuncsModule(code, locals, 1) }

// FuncsModule is FuncModule with n copies of the function: a module whose
// compile takes n times one function's, and which wazero can cancel
// between them.
func FuncsModule(code []byte, locals uint32, n int) []byte {
	body := []byte{0}
	if locals > 0 {
		body = append(binary.AppendUvarint([]byte{1}, uint64(locals)), 0x7e)
	}
	body = append(append(body, code...), 0x0b)
	fn := append(binary.AppendUvarint(nil, uint64(len(body))), body...)
	decls, bodies := binary.AppendUvarint(nil, uint64(n)), binary.AppendUvarint(nil, uint64(n))
	for range n {
		decls = append(decls, 0) // of type 0
		bodies = append(bodies, fn...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = appendSection(m, 1, []byte{1, 0x60, 0, 0}) // one type: () -> ()
	m = appendSection(m, 3, decls)
	return appendSection(m, 10, bodies)
}

func appendSection(m []byte, id byte, content []byte) []byte {
	m = append(m, id)
	m = binary.AppendUvarint(m, uint64(len(content)))
	return append(m, content...)
}

// BrTable is a block holding a br_table of n targets (its default
// included), all to that block.
func BrTable(n int) []byte {
	code := []byte{0x02, 0x40, 0x41, 0x00, 0x0e}
	code = binary.AppendUvarint(code, uint64(n-1))
	for range n {
		code = append(code, 0)
	}
	return append(code, 0x0b)
}

// NestedBlocks is n blocks, each inside the one before.
func NestedBlocks(n int) []byte {
	code := make([]byte, 0, 3*n)
	for range n {
		code = append(code, 0x02, 0x40)
	}
	for range n {
		code = append(code, 0x0b)
	}
	return code
}

// NestedLoops is n loops, each inside the one before.
func NestedLoops(n int) []byte {
	code := NestedBlocks(n)
	for i := range n {
		code[2*i] = 0x03
	}
	return code
}

// SequentialBlocks is n empty blocks one after the other.
func SequentialBlocks(n int) []byte {
	code := make([]byte, 0, 3*n)
	for range n {
		code = append(code, 0x02, 0x40, 0x0b)
	}
	return code
}

// BranchIfs is one block holding n br_if to it.
func BranchIfs(n int) []byte {
	code := []byte{0x02, 0x40}
	for range n {
		code = append(code, 0x41, 0x00, 0x0d, 0x00)
	}
	return append(code, 0x0b)
}
