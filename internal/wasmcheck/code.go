package wasmcheck

import "fmt"

// code reads the code section: every function body, instruction by
// instruction.
func (c *checker) code(r *reader) error {
	n, err := r.count("Functions", "module defines %d functions", c.l.Functions, 2)
	if err != nil {
		return err
	}
	c.s.Functions = n
	for i := uint32(0); i < n; i++ {
		fn := c.importedFuncs + i
		at := r.off()
		size, err := r.u32()
		if err != nil {
			return err
		}
		if size > c.l.FunctionBytes {
			return tooMany("FunctionBytes", uint64(size), uint64(c.l.FunctionBytes), at, fmt.Sprintf("function %d's body has", fn)+" %d bytes")
		}
		body, err := r.sub(size, fmt.Sprintf("function %d's body", fn))
		if err != nil {
			return err
		}
		c.s.FunctionBytes.see(uint64(size), fn)
		if err := c.body(body, fn); err != nil {
			return err
		}
	}
	return nil
}

// body reads one function's locals and instructions, measures it, and
// then checks the figures: each is counted to the end (the read is
// bounded by FunctionBytes), so a message gives the function's real one.
func (c *checker) body(r *reader, fn uint32) error {
	at := r.off()
	decls, err := r.count("", "%d local declarations", 0, 2)
	if err != nil {
		return err
	}
	var f funcFigures
	for i := uint32(0); i < decls; i++ {
		n, err := r.u32()
		if err != nil {
			return err
		}
		f.locals += uint64(n) // at most 2^32 declarations of 2^32 each
		if err := valType(r); err != nil {
			return err
		}
	}
	// wazero makes a slice of the sum before reading the body.
	if err := f.check(c, fn, at, "Locals", f.locals, uint64(c.l.Locals), " declares %d locals"); err != nil {
		return err
	}
	if err := f.instructions(r, fn, &c.open); err != nil {
		return err
	}
	for _, b := range []struct {
		name, what string
		got, max   uint64
	}{
		{"BranchTable", "'s br_table has %d targets", f.widest, uint64(c.l.BranchTable)},
		{"Nesting", " nests blocks %d deep", f.deepest, uint64(c.l.Nesting)},
		{"Blocks", " has %d blocks", f.blocks, uint64(c.l.Blocks)},
		{"Loops", " has %d loops", f.loops, uint64(c.l.Loops)},
		{"BranchTargets", " has %d branch targets", f.targets, uint64(c.l.BranchTargets)},
		{"BlocksInLoops", " has blocks inside loops %d times over", f.inLoops, c.l.BlocksInLoops},
		{"LocalsTimesBlocks", " has locals times blocks of %d", f.locals * f.blocks, c.l.LocalsTimesBlocks},
	} {
		if err := f.check(c, fn, at, b.name, b.got, b.max, b.what); err != nil {
			return err
		}
	}
	c.s.Locals.see(f.locals, fn)
	c.s.BranchTable.see(f.widest, fn)
	c.s.Nesting.see(f.deepest, fn)
	c.s.Blocks.see(f.blocks, fn)
	c.s.Loops.see(f.loops, fn)
	c.s.BranchTargets.see(f.targets, fn)
	c.s.BlocksInLoops.see(f.inLoops, fn)
	c.s.LocalsTimesBlocks.see(f.locals*f.blocks, fn)
	return nil
}

// funcFigures are what body measures of one function.
type funcFigures struct {
	locals, deepest, blocks, loops, targets, widest uint64
	// inLoops sums, over the blocks, the loops around each.
	inLoops uint64
}

func (f *funcFigures) check(c *checker, fn uint32, at int, name string, got, max uint64, what string) error {
	if got > max {
		return tooMany(name, got, uint64(max), at, fmt.Sprintf("function %d", fn)+what)
	}
	return nil
}

// instructions reads a body's instructions up to the end that closes it.
func (f *funcFigures) instructions(r *reader, fn uint32, stack *[]bool) error {
	var depth uint64
	// open says of each open block whether it is a loop (at most half
	// the body's bytes deep); loopDepth counts the open loops.
	open := (*stack)[:0]
	defer func() { *stack = open }()
	var loopDepth uint64
	for {
		at := r.off()
		op, err := r.byte()
		if err != nil {
			return malformed(at, "function %d's body ends inside a block", fn)
		}
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			if _, err := r.signed(5); err != nil { // block type: s33
				return err
			}
			depth++
			f.deepest = max(f.deepest, depth)
			f.blocks++
			f.inLoops += loopDepth
			if op == 0x03 {
				f.loops++
				loopDepth++
			}
			open = append(open, op == 0x03)
		case op == 0x05: // else: a block of its own
			f.blocks++
			f.inLoops += loopDepth
		case op == 0x0b: // end
			if depth == 0 {
				if !r.done() {
					return malformed(r.off(), "function %d's body has %d bytes past its end", fn, r.remaining())
				}
				return nil
			}
			depth--
			if open[len(open)-1] {
				loopDepth--
			}
			open = open[:len(open)-1]
		case op == 0x0c || op == 0x0d: // br, br_if
			if _, err := r.u32(); err != nil {
				return err
			}
			f.targets++
		case op == 0x0e: // br_table
			n, err := r.u32()
			if err != nil {
				return err
			}
			width := uint64(n) + 1 // the default
			if width > uint64(r.remaining()) {
				return malformed(at, "function %d's br_table of %d targets runs past the body", fn, width)
			}
			f.widest = max(f.widest, width)
			f.targets += width
			for j := uint64(0); j < width; j++ {
				if _, err := r.u32(); err != nil {
					return err
				}
			}
		default:
			if err := r.immediates(op, at, fn); err != nil {
				return err
			}
		}
	}
}

// immediates skips the immediates of an instruction that neither opens,
// closes nor branches.
func (r *reader) immediates(op byte, at int, fn uint32) error {
	var err error
	switch {
	case op <= 0x01 || op == 0x0f || op == 0x1a || op == 0x1b || (op >= 0x45 && op <= 0xc4) || op == 0xd1:
		// unreachable, nop, return, drop, select, numeric, ref.is_null
	case op == 0x10 || (op >= 0x20 && op <= 0x26) || op == 0xd2:
		// call, local.*, global.*, table.get/set, ref.func
		_, err = r.u32()
	case op == 0x11: // call_indirect
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case op == 0x1c: // select t*
		var n uint32
		if n, err = r.count("", "%d select types", 0, 1); err == nil {
			err = r.skipValTypes(n)
		}
	case op >= 0x28 && op <= 0x3e:
		err = r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		err = r.skip(1)
	case op == 0x41:
		_, err = r.signed(5)
	case op == 0x42:
		_, err = r.signed(10)
	case op == 0x43:
		err = r.skip(4)
	case op == 0x44:
		err = r.skip(8)
	case op == 0xd0: // ref.null
		err = r.skip(1)
	case op == 0xfc:
		err = r.misc(at, fn)
	case op == 0xfd:
		err = r.simd()
	default:
		return malformed(at, "function %d has unknown opcode 0x%02x", fn, op)
	}
	return err
}

func (r *reader) memarg() error {
	if _, err := r.u32(); err != nil { // alignment
		return err
	}
	_, err := r.u32() // offset
	return err
}

// misc skips a 0xfc instruction: saturating truncations, bulk memory and
// table instructions.
func (r *reader) misc(at int, fn uint32) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // trunc_sat
		return nil
	case sub == 8: // memory.init data 0x00
		if _, err := r.u32(); err != nil {
			return err
		}
		return r.skip(1)
	case sub == 9 || sub == 13 || (sub >= 15 && sub <= 17): // data.drop, elem.drop, table.grow/size/fill
		_, err := r.u32()
		return err
	case sub == 10: // memory.copy 0x00 0x00
		return r.skip(2)
	case sub == 11: // memory.fill 0x00
		return r.skip(1)
	case sub == 12 || sub == 14: // table.init, table.copy
		if _, err := r.u32(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	}
	return malformed(at, "function %d has unknown instruction 0xfc %d", fn, sub)
}

// simd skips a 0xfd instruction. Its opcode is read as one byte, as
// wazero reads it: the opcodes above 0x7f are two-byte LEB128s whose second
// byte, 0x01, both read as a nop.
func (r *reader) simd() error {
	sub, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case sub <= 0x0b || sub == 0x5c || sub == 0x5d: // loads, store, load_zero
		return r.memarg()
	case sub == 0x0c || sub == 0x0d: // v128.const, i8x16.shuffle
		return r.skip(16)
	case sub >= 0x15 && sub <= 0x22: // extract_lane, replace_lane
		return r.skip(1)
	case sub >= 0x54 && sub <= 0x5b: // load_lane, store_lane
		if err := r.memarg(); err != nil {
			return err
		}
		return r.skip(1)
	}
	return nil
}
