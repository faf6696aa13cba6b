package wasmcheck

import (
	"bytes"
	"fmt"
)

// Section ids of the core binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

var header = []byte("\x00asm\x01\x00\x00\x00")

// Most is the largest value of a per-function figure in a module, and the
// function (in the module's function index space, imports first) that has
// it.
type Most struct {
	Value    uint64
	Function uint32
}

func (m *Most) see(v uint64, fn uint32) {
	if v > m.Value {
		m.Value, m.Function = v, fn
	}
}

// Stats are the figures Check measured: the module's counts, and the
// largest per-function figures. They calibrate Limits.
type Stats struct {
	ModuleBytes     int
	Types           uint32
	TypeArity       uint32 // the most params plus results of one type
	Imports         uint32
	Functions       uint32 // defined (not imported) functions
	Tables          uint32
	Memories        uint32
	Globals         uint32
	Exports         uint32
	ElementSegments uint32
	ElementItems    uint64 // over all segments
	DataSegments    uint32
	NameEntries     uint64 // function and local names in the "name" section

	FunctionBytes Most
	Locals        Most
	Nesting       Most
	Blocks        Most // block, loop, if and else
	Loops         Most
	BranchTargets Most // br, br_if, and every target of a br_table (its default too)
	BranchTable   Most // the targets of one br_table, its default included
	// BlocksInLoops sums, over a function's blocks, the loops around each;
	// LocalsTimesBlocks is its locals times its blocks.
	BlocksInLoops     Most
	LocalsTimesBlocks Most
}

// Check reads wasm and returns its figures, or an *Error: a bound of l it
// exceeds, or bytes it cannot read. It reads each byte at most once and
// allocates a fixed amount beside a control stack (one bool per open
// block, so at most half of l.FunctionBytes), reused across functions.
func Check(wasm []byte, l Limits) (*Stats, error) {
	s := &Stats{ModuleBytes: len(wasm)}
	if uint64(len(wasm)) > l.ModuleBytes {
		return s, tooMany("ModuleBytes", uint64(len(wasm)), l.ModuleBytes, 0, "module has %d bytes")
	}
	if !bytes.HasPrefix(wasm, header) {
		return s, malformed(0, "not a WebAssembly 1.0 module header")
	}
	c := &checker{l: l, s: s}
	r := &reader{b: wasm, pos: len(header)}
	last := byte(0)
	for !r.done() {
		at := r.off()
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return s, err
		}
		sec, err := r.sub(size, fmt.Sprintf("section %d", id))
		if err != nil {
			return s, err
		}
		if id != secCustom {
			if order(id) <= order(last) {
				return s, malformed(at, "section %d out of order or repeated", id)
			}
			last = id
		}
		if err := c.section(id, sec); err != nil {
			return s, err
		}
		if !sec.done() {
			return s, malformed(sec.off(), "section %d has %d bytes past its content", id, sec.remaining())
		}
	}
	// Imported and defined, each count was bounded on its own.
	for _, t := range []struct {
		limit, what string
		got, max    uint32
	}{
		{"Tables", "module has %d tables", s.Tables, l.Tables},
		{"Memories", "module has %d memories", s.Memories, l.Memories},
		{"Globals", "module has %d globals", s.Globals, l.Globals},
	} {
		if t.got > t.max {
			return s, tooMany(t.limit, uint64(t.got), uint64(t.max), len(wasm), t.what)
		}
	}
	if c.funcDecls != s.Functions {
		return s, malformed(len(wasm), "%d functions declared but %d bodies", c.funcDecls, s.Functions)
	}
	return s, nil
}

// order is a section's rank in the required order: data count (12) comes
// between element (9) and code (10).
func order(id byte) int {
	switch {
	case id == secDataCount:
		return secElement*2 + 1
	case id > secDataCount:
		return 1000 // refused by section
	default:
		return int(id) * 2
	}
}

type checker struct {
	l Limits
	s *Stats
	// funcDecls counts the function section's entries, imports the
	// imported functions (the index of the first defined one).
	funcDecls, importedFuncs uint32
	open                     []bool // the control stack, reused by every body
}

func (c *checker) section(id byte, r *reader) error {
	switch id {
	case secCustom:
		return c.custom(r)
	case secType:
		return c.types(r)
	case secImport:
		return c.imports(r)
	case secFunction:
		n, err := r.count("Functions", "module defines %d functions", c.l.Functions, 1)
		if err != nil {
			return err
		}
		c.funcDecls = n
		for i := uint32(0); i < n; i++ {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case secTable:
		n, err := r.count("Tables", "module has %d tables", c.l.Tables, 3)
		if err != nil {
			return err
		}
		c.s.Tables += n
		for i := uint32(0); i < n; i++ {
			if err := c.tableType(r); err != nil {
				return err
			}
		}
		return nil
	case secMemory:
		n, err := r.count("Memories", "module has %d memories", c.l.Memories, 2)
		if err != nil {
			return err
		}
		c.s.Memories += n
		for i := uint32(0); i < n; i++ {
			if err := limitsType(r); err != nil {
				return err
			}
		}
		return nil
	case secGlobal:
		n, err := r.count("Globals", "module has %d globals", c.l.Globals, 3)
		if err != nil {
			return err
		}
		c.s.Globals += n
		for i := uint32(0); i < n; i++ {
			if err := valType(r); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil { // mutability
				return err
			}
			if err := constExpr(r); err != nil {
				return err
			}
		}
		return nil
	case secExport:
		n, err := r.count("Exports", "module has %d exports", c.l.Exports, 3)
		if err != nil {
			return err
		}
		c.s.Exports = n
		for i := uint32(0); i < n; i++ {
			if err := r.name("export name"); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil {
				return err
			}
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case secStart, secDataCount:
		_, err := r.u32()
		return err
	case secElement:
		return c.elements(r)
	case secCode:
		return c.code(r)
	case secData:
		return c.data(r)
	}
	return malformed(r.base-1, "unknown section id %d", id)
}

func (c *checker) types(r *reader) error {
	n, err := r.count("Types", "module has %d types", c.l.Types, 3)
	if err != nil {
		return err
	}
	c.s.Types = n
	for i := uint32(0); i < n; i++ {
		at := r.off()
		if b, err := r.byte(); err != nil {
			return err
		} else if b != 0x60 {
			return malformed(at, "type %d is not a function type (0x%02x)", i, b)
		}
		params, err := r.count("", "%d parameters", 0, 1)
		if err != nil {
			return err
		}
		if err := r.skipValTypes(params); err != nil {
			return err
		}
		results, err := r.count("", "%d results", 0, 1)
		if err != nil {
			return err
		}
		if err := r.skipValTypes(results); err != nil {
			return err
		}
		arity := params + results // each at most the section's length
		if arity > c.l.TypeArity {
			return tooMany("TypeArity", uint64(arity), uint64(c.l.TypeArity), at, fmt.Sprintf("type %d has", i)+" %d parameters and results")
		}
		c.s.TypeArity = max(c.s.TypeArity, arity)
	}
	return nil
}

func (r *reader) skipValTypes(n uint32) error {
	for i := uint32(0); i < n; i++ {
		if err := valType(r); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) imports(r *reader) error {
	n, err := r.count("Imports", "module has %d imports", c.l.Imports, 4)
	if err != nil {
		return err
	}
	c.s.Imports = n
	for i := uint32(0); i < n; i++ {
		if err := r.name("import module name"); err != nil {
			return err
		}
		if err := r.name("import name"); err != nil {
			return err
		}
		at := r.off()
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0:
			c.importedFuncs++
			_, err = r.u32()
		case 1:
			c.s.Tables++
			err = c.tableType(r)
		case 2:
			c.s.Memories++
			err = limitsType(r)
		case 3:
			c.s.Globals++
			if err = valType(r); err == nil {
				_, err = r.byte()
			}
		default:
			err = malformed(at, "import %d has unknown kind %d", i, kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tableType reads a table's reference type and limits, and refuses a
// minimum above MaxTableElements (BoundTables gives it a maximum).
func (c *checker) tableType(r *reader) error {
	at := r.off()
	ref, err := r.byte()
	if err != nil {
		return err
	}
	if ref != 0x70 && ref != 0x6f {
		return malformed(at, "table of unknown reference type 0x%02x", ref)
	}
	minAt := r.off() + 1
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if flag > 1 {
		return malformed(at, "table limits flag %d", flag)
	}
	minElems, err := r.u32()
	if err != nil {
		return err
	}
	if flag == 1 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	if minElems > c.l.TableElements {
		return tooMany("TableElements", uint64(minElems), uint64(c.l.TableElements), minAt, fmt.Sprintf("table %d declares", c.s.Tables-1)+" %d elements")
	}
	return nil
}

// limitsType reads a memory's limits (wasm 2.0: no shared or 64-bit
// memories).
func limitsType(r *reader) error {
	at := r.off()
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if flag > 1 {
		return malformed(at, "memory limits flag %d", flag)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag == 1 {
		_, err = r.u32()
	}
	return err
}

// valType reads a value type of wasm 2.0.
func valType(r *reader) error {
	at := r.off()
	b, err := r.byte()
	if err != nil {
		return err
	}
	switch b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return nil
	}
	return malformed(at, "unknown value type 0x%02x", b)
}

// constExpr reads a constant expression: one instruction of those allowed
// there, then end.
func constExpr(r *reader) error {
	at := r.off()
	op, err := r.byte()
	if err != nil {
		return err
	}
	switch op {
	case 0x41: // i32.const
		_, err = r.signed(5)
	case 0x42: // i64.const
		_, err = r.signed(10)
	case 0x43:
		err = r.skip(4)
	case 0x44:
		err = r.skip(8)
	case 0x23, 0xd2: // global.get, ref.func
		_, err = r.u32()
	case 0xd0: // ref.null
		_, err = r.byte()
	case 0xfd: // v128.const
		var sub byte
		if sub, err = r.byte(); err == nil {
			if sub != 12 {
				return malformed(at, "SIMD instruction %d in a constant expression", sub)
			}
			err = r.skip(16)
		}
	default:
		return malformed(at, "instruction 0x%02x in a constant expression", op)
	}
	if err != nil {
		return err
	}
	at = r.off()
	if end, err := r.byte(); err != nil {
		return err
	} else if end != 0x0b {
		return malformed(at, "constant expression of more than one instruction")
	}
	return nil
}

func (c *checker) elements(r *reader) error {
	n, err := r.count("ElementSegments", "module has %d element segments", c.l.ElementSegments, 2)
	if err != nil {
		return err
	}
	c.s.ElementSegments = n
	for i := uint32(0); i < n; i++ {
		at := r.off()
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags > 7 {
			return malformed(at, "element segment %d has flags %d", i, flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if flags&1 == 0 { // active: an offset
			if err := constExpr(r); err != nil {
				return err
			}
		}
		if flags&3 != 0 { // elemkind or reftype
			if _, err := r.byte(); err != nil {
				return err
			}
		}
		exprs := flags&4 != 0
		minBytes := 1
		if exprs {
			minBytes = 2
		}
		items, err := r.count("", "%d element segment items", 0, minBytes)
		if err != nil {
			return err
		}
		c.s.ElementItems += uint64(items)
		if c.s.ElementItems > c.l.ElementItems {
			return tooMany("ElementItems", c.s.ElementItems, c.l.ElementItems, at, "module's element segments have %d items")
		}
		for j := uint32(0); j < items; j++ {
			if exprs {
				err = constExpr(r)
			} else {
				_, err = r.u32()
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) data(r *reader) error {
	n, err := r.count("DataSegments", "module has %d data segments", c.l.DataSegments, 2)
	if err != nil {
		return err
	}
	c.s.DataSegments = n
	for i := uint32(0); i < n; i++ {
		at := r.off()
		flag, err := r.u32()
		if err != nil {
			return err
		}
		switch flag {
		case 0:
			err = constExpr(r)
		case 1:
		case 2:
			if _, err = r.u32(); err == nil {
				err = constExpr(r)
			}
		default:
			return malformed(at, "data segment %d has flag %d", i, flag)
		}
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.sub(size, "data segment"); err != nil {
			return err
		}
	}
	return nil
}

// custom reads a custom section: its name, and the "name" section's
// content, whose counts wazero's decoder sizes maps from.
func (c *checker) custom(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	name, err := r.sub(n, "custom section name")
	if err != nil {
		return err
	}
	if string(name.b) != "name" {
		r.pos = len(r.b)
		return nil
	}
	return c.names(r)
}
