package wasmcheck_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// module assembles a module from (id, content) sections.
func module(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s...)
	}
	return m
}

func section(id byte, content ...byte) []byte {
	return append(binary.AppendUvarint([]byte{id}, uint64(len(content))), content...)
}

func leb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// loops turns the blocks of code (made of block 0x40 and end only) into
// loops.
func loops(code []byte) []byte {
	return bytes.ReplaceAll(code, []byte{0x02, 0x40}, []byte{0x03, 0x40})
}

// repeat is n copies of b.
func repeat(b []byte, n int) []byte { return []byte(strings.Repeat(string(b), n)) }

// TestPerFunctionBounds holds each per-function bound of Default: the
// issue's hostile modules, and one past each bound, are refused with the
// figure and the bound; a module at the bound passes.
func TestPerFunctionBounds(t *testing.T) {
	d := wasmcheck.Default
	tests := map[string]struct {
		code    []byte
		locals  uint32
		limit   string // "" when it passes
		message string
	}{
		"br_table of 400,000 targets": {code: testutil.BrTable(400_000), limit: "BranchTable",
			message: "function 0's br_table has 400000 targets, more than the 16384 allowed"},
		"40,000 nested blocks": {code: testutil.NestedBlocks(40_000), limit: "Nesting",
			message: "function 0 nests blocks 40000 deep, more than the 8192 allowed"},
		"100,000 nested blocks": {code: testutil.NestedBlocks(100_000), limit: "Nesting",
			message: "function 0 nests blocks 100000 deep, more than the 8192 allowed"},
		"br_table at the bound":         {code: testutil.BrTable(int(d.BranchTable))},
		"br_table past the bound":       {code: testutil.BrTable(int(d.BranchTable) + 1), limit: "BranchTable"},
		"nesting at the bound":          {code: testutil.NestedBlocks(int(d.Nesting))},
		"nesting past the bound":        {code: testutil.NestedBlocks(int(d.Nesting) + 1), limit: "Nesting"},
		"blocks at the bound":           {code: testutil.SequentialBlocks(int(d.Blocks))},
		"blocks past the bound":         {code: testutil.SequentialBlocks(int(d.Blocks) + 1), limit: "Blocks", message: "function 0 has 60001 blocks, more than the 60000 allowed"},
		"loops at the bound":            {code: loops(testutil.SequentialBlocks(int(d.Loops)))},
		"blocks in loops":               {code: testutil.NestedLoops(2048), limit: "BlocksInLoops", message: "function 0 has blocks inside loops 2096128 times over, more than the 1048576 allowed"},
		"locals times blocks":           {code: testutil.SequentialBlocks(1000), locals: 20_000, limit: "LocalsTimesBlocks", message: "function 0 has locals times blocks of 20000000, more than the 16777216 allowed"},
		"loops past the bound":          {code: testutil.NestedLoops(int(d.Loops) + 1), limit: "Loops"},
		"branch targets at the bound":   {code: testutil.BranchIfs(int(d.BranchTargets))},
		"branch targets past the bound": {code: testutil.BranchIfs(int(d.BranchTargets) + 1), limit: "BranchTargets"},
		"locals at the bound":           {locals: d.Locals},
		"locals past the bound":         {locals: d.Locals + 1, limit: "Locals", message: "function 0 declares 50001 locals, more than the 50000 allowed"},
		// A 30-byte module: wazero makes a slice of the sum of the
		// locals (4 GiB of value types) before reading the body.
		"four billion locals": {locals: 0xfffffff0, limit: "Locals"},
		"body at the bound":   {code: repeat([]byte{0x01}, int(d.FunctionBytes)-2)}, // nops, a locals count and end
		"body past the bound": {code: repeat([]byte{0x01}, int(d.FunctionBytes)-1), limit: "FunctionBytes",
			message: "function 0's body has 2097153 bytes, more than the 2097152 allowed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := testutil.FuncModule(tc.code, tc.locals)
			_, err := wasmcheck.Check(m, d)
			if tc.limit == "" {
				if err != nil {
					t.Fatalf("refused a module at the bounds: %v", err)
				}
				return
			}
			var ce *wasmcheck.Error
			if !errors.As(err, &ce) || ce.Limit != tc.limit {
				t.Fatalf("err = %v, want the %s bound", err, tc.limit)
			}
			if tc.message != "" && err.Error() != tc.message {
				t.Fatalf("message %q, want %q", err, tc.message)
			}
		})
	}
}

// TestModuleBounds holds the module-wide counts, with small limits.
func TestModuleBounds(t *testing.T) {
	small := wasmcheck.Default
	small.ModuleBytes, small.Types, small.Imports, small.Functions, small.Globals = 200, 2, 1, 1, 1
	small.Exports, small.ElementSegments, small.ElementItems, small.DataSegments, small.TypeArity = 1, 1, 2, 1, 3
	small.Tables, small.TableElements = 1, 100
	fnType := []byte{0x60, 0, 0}
	global := []byte{0x7f, 0, 0x41, 0, 0x0b}
	tests := map[string]struct {
		m       []byte
		limit   string
		message string
	}{
		"module size": {m: module(section(0, cat([]byte{1, 'x'}, make([]byte, 200))...)), limit: "ModuleBytes", message: "module has 213 bytes, more than the 200 allowed"},
		"types":       {m: module(section(1, cat([]byte{3}, fnType, fnType, fnType)...)), limit: "Types", message: "module has 3 types, more than the 2 allowed"},
		"type arity":  {m: module(section(1, 1, 0x60, 2, 0x7f, 0x7f, 2, 0x7f, 0x7f)), limit: "TypeArity", message: "type 0 has 4 parameters and results, more than the 3 allowed"},
		"imports":     {m: module(section(2, 2, 1, 'a', 1, 'b', 3, 0x7f, 0, 1, 'a', 1, 'c', 3, 0x7f, 0)), limit: "Imports"},
		"functions":   {m: module(section(1, cat([]byte{1}, fnType)...), section(3, 2, 0, 0)), limit: "Functions"},
		"globals":     {m: module(section(6, cat([]byte{2}, global, global)...)), limit: "Globals"},
		"imported and defined globals": {m: module(section(2, 1, 1, 'a', 1, 'b', 3, 0x7f, 0), section(6, cat([]byte{1}, global)...)), limit: "Globals",
			message: "module has 2 globals, more than the 1 allowed"},
		"exports":          {m: module(section(7, 2, 1, 'a', 3, 0, 1, 'b', 3, 0)), limit: "Exports"},
		"tables":           {m: module(section(4, 2, 0x70, 0, 0, 0x70, 0, 0)), limit: "Tables"},
		"table minimum":    {m: module(section(4, 1, 0x70, 0, 101)), limit: "TableElements", message: "table 0 declares 101 elements, more than the 100 allowed"},
		"element segments": {m: module(section(9, 2, 1, 0, 0, 1, 0, 0)), limit: "ElementSegments"},
		"element items":    {m: module(section(9, 1, 1, 0, 3, 0, 0, 0)), limit: "ElementItems"},
		"data segments":    {m: module(section(11, 2, 1, 0, 1, 0)), limit: "DataSegments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := wasmcheck.Check(tc.m, small)
			var ce *wasmcheck.Error
			if !errors.As(err, &ce) || ce.Limit != tc.limit {
				t.Fatalf("err = %v, want the %s bound", err, tc.limit)
			}
			if tc.message != "" && err.Error() != tc.message {
				t.Fatalf("message %q, want %q", err, tc.message)
			}
		})
	}
}

// TestClaimsPastTheEnd: a count or length larger than the bytes that follow
// is refused as malformed, however small the module. wazero's decoder makes
// a slice of each such count before reading: every one of these modules
// (15 to 30 bytes) made it allocate gigabytes, and the ones below marked
// fatal killed the process ("fatal error: runtime: out of memory").
func TestClaimsPastTheEnd(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	tests := map[string][]byte{
		"types (fatal)":           module(section(1, cat(leb(9999), []byte{0x60})...)),
		"globals (fatal)":         module(section(6, cat(leb(9999), []byte{0x7f})...)),
		"function names (fatal)":  module(section(0, cat([]byte{4}, []byte("name"), []byte{1, 5}, huge)...)),
		"local names":             module(section(0, cat([]byte{4}, []byte("name"), []byte{2, 3, 1, 0}, huge[:1])...)),
		"data segment bytes":      module(section(5, 1, 0, 1), section(11, cat([]byte{1, 1}, huge)...)),
		"custom section size":     cat(module(), []byte{0, 0xff, 0xff, 0xff, 0x0f, 1, 'x'}),
		"import name":             module(section(2, cat([]byte{1}, huge, []byte("a"))...)),
		"element items":           module(section(9, cat([]byte{1, 1, 0}, leb(1000))...)),
		"br_table targets":        testutil.FuncModule(cat([]byte{0x02, 0x40, 0x41, 0, 0x0e}, huge), 0),
		"function body size":      module(section(1, 1, 0x60, 0, 0), section(3, 1, 0), section(10, cat([]byte{1}, leb(1000), []byte{0, 0x0b})...)),
		"local declarations":      module(section(1, 1, 0x60, 0, 0), section(3, 1, 0), section(10, 1, 3, 0xff, 0x0f, 0x0b)),
		"unknown opcode":          testutil.FuncModule([]byte{0x12, 0}, 0), // return_call: a proposal wazero's 2.0 features leave out
		"no end":                  module(section(1, 1, 0x60, 0, 0), section(3, 1, 0), section(10, 1, 2, 0, 0x01)),
		"bytes past the end":      module(section(1, 1, 0x60, 0, 0), section(3, 1, 0), section(10, 1, 3, 0, 0x0b, 0x01)),
		"functions without code":  module(section(1, 1, 0x60, 0, 0), section(3, 1, 0)),
		"sections out of order":   module(section(3, 0), section(1, 0)),
		"not a module":            []byte("\x00asm\x0d\x00\x01\x00"),
		"truncated section":       module(section(1, 1, 0x60, 0, 0))[:12],
		"name subsection overrun": module(section(0, cat([]byte{4}, []byte("name"), []byte{0, 9, 1, 'm'})...)),
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := wasmcheck.Check(m, wasmcheck.Default)
			var ce *wasmcheck.Error
			if !errors.As(err, &ce) || ce.Limit != "" || !strings.HasPrefix(err.Error(), "malformed module at byte ") {
				t.Fatalf("err = %v, want malformed", err)
			}
		})
	}
}
