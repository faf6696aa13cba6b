package wasmcomponent

import (
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// coreModule is what Reduce reads of a core module: enough to list the main
// module's imports with their types and to interpret the shim and fixup
// modules of wit-component. The engine's compiler validates the main module
// in full later.
type coreModule struct {
	types   []abi.Signature
	imports []coreImport
	// funcTypes are the type indices of the functions the module defines
	// (after the imported ones in the function index space).
	funcTypes []uint32
	tables    int // defined tables
	exports   []coreExportDecl
	start     optIdx
	elems     []elemSegment
	// bodies are the code section's function bodies, kept only when asked.
	bodies [][]byte
	// importSection locates the import section (from its id byte to its
	// end) in the module's bytes, for rewriting it; [0] is -1 when there is
	// none.
	importSection [2]int
	// funcImports are the function imports, in function index order.
	funcImports []coreImport
}

// externKind is a core import's or export's kind.
type externKind byte

const (
	externFunc   externKind = 0x00
	externTable  externKind = 0x01
	externMemory externKind = 0x02
	externGlobal externKind = 0x03
	externTag    externKind = 0x04
)

func (k externKind) String() string {
	switch k {
	case externFunc:
		return "function"
	case externTable:
		return "table"
	case externMemory:
		return "memory"
	case externGlobal:
		return "global"
	case externTag:
		return "tag"
	}
	return fmt.Sprintf("kind 0x%02x", byte(k))
}

type coreImport struct {
	module, name string
	kind         externKind
	typeIdx      uint32 // functions and tags
}

type coreExportDecl struct {
	name string
	kind externKind
	idx  uint32
}

// elemSegment is an active element segment with a constant offset.
type elemSegment struct {
	table  uint32
	offset uint32
	// funcs are the function indices, -1 for a null entry.
	funcs []int64
}

// Core section ids.
const (
	coreSecCustom   = 0
	coreSecType     = 1
	coreSecImport   = 2
	coreSecFunction = 3
	coreSecTable    = 4
	coreSecExport   = 7
	coreSecStart    = 8
	coreSecElement  = 9
	coreSecCode     = 10
)

// parseCoreModule reads m; keepBodies keeps the function bodies (only the
// shim's are needed).
func parseCoreModule(m *moduleDef, keepBodies bool) (*coreModule, error) {
	cm := &coreModule{importSection: [2]int{-1, -1}}
	r := newReader(m.bytes, m.offset)
	r.pos = len(moduleHeader)
	for !r.done() {
		sectionStart := r.pos
		id := r.byte()
		size := r.u32()
		content := r.bytes(int(size))
		if r.err != nil {
			break
		}
		start := r.pos - len(content)
		sr := newReader(content, m.offset+start)
		if err := cm.section(id, sr, keepBodies); err != nil {
			return nil, err
		}
		if sr.err != nil {
			return nil, sr.err
		}
		if id != coreSecCustom && !sr.done() {
			return nil, &MalformedError{Offset: sr.offset(), Msg: fmt.Sprintf("core section %d has %d bytes past its content", id, sr.remaining())}
		}
		if id == coreSecImport {
			if cm.importSection[0] >= 0 {
				return nil, &MalformedError{Offset: sr.base, Msg: "two import sections"}
			}
			cm.importSection = [2]int{sectionStart, r.pos}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, imp := range cm.imports {
		if imp.kind == externFunc {
			cm.funcImports = append(cm.funcImports, imp)
		}
	}
	return cm, nil
}

func (cm *coreModule) section(id byte, r *reader, keepBodies bool) error {
	switch id {
	case coreSecType:
		n := r.count("core type", 3)
		for i := 0; i < n && r.err == nil; i++ {
			switch b := r.byte(); b {
			case 0x60:
				cm.types = append(cm.types, readCoreFuncType(r))
			default:
				if r.err == nil {
					return unsupported("core type form 0x%02x in a core module (GC types)", b)
				}
			}
		}
	case coreSecImport:
		n := r.count("core import", 4)
		for i := 0; i < n && r.err == nil; i++ {
			imp := coreImport{module: r.name(), name: r.name()}
			imp.kind = externKind(r.peek())
			if imp.kind == externFunc || imp.kind == externTag {
				r.byte()
				if imp.kind == externTag {
					r.byte() // attribute: exception
				}
				imp.typeIdx = r.u32()
			} else if err := readCoreExternType(r); err != nil {
				return err
			}
			cm.imports = append(cm.imports, imp)
		}
	case coreSecFunction:
		n := r.count("function", 1)
		for i := 0; i < n && r.err == nil; i++ {
			cm.funcTypes = append(cm.funcTypes, r.u32())
		}
	case coreSecTable:
		n := r.count("table", 2)
		for i := 0; i < n && r.err == nil; i++ {
			if r.peek() == 0x40 {
				return unsupported("a table with an initializer expression")
			}
			readTableType(r)
			cm.tables++
		}
	case coreSecExport:
		n := r.count("core export", 3)
		for i := 0; i < n && r.err == nil; i++ {
			cm.exports = append(cm.exports, coreExportDecl{name: r.name(), kind: externKind(r.byte()), idx: r.u32()})
		}
	case coreSecStart:
		cm.start = optIdx{set: true, idx: r.u32()}
	case coreSecElement:
		return cm.elementSection(r)
	case coreSecCode:
		if !keepBodies {
			r.pos = len(r.b)
			return nil
		}
		n := r.count("function body", 2)
		for i := 0; i < n && r.err == nil; i++ {
			size := r.u32()
			cm.bodies = append(cm.bodies, r.bytes(int(size)))
		}
	default:
		// Memories, globals, data and custom sections are not needed.
		r.pos = len(r.b)
	}
	return r.err
}

func (cm *coreModule) elementSection(r *reader) error {
	n := r.count("element segment", 2)
	for i := 0; i < n && r.err == nil; i++ {
		flags := r.u32()
		if flags > 7 {
			r.fail("unknown element segment flags %d", flags)
			break
		}
		active := flags&1 == 0
		seg := elemSegment{}
		if active {
			if flags&2 != 0 {
				seg.table = r.u32()
			}
			off, err := readConstI32(r)
			if err != nil {
				return err
			}
			seg.offset = uint32(off)
		}
		exprs := flags&4 != 0
		if flags&3 != 0 { // an element kind or reference type follows
			r.byte()
		}
		count := r.count("element", 1)
		for j := 0; j < count && r.err == nil; j++ {
			if !exprs {
				seg.funcs = append(seg.funcs, int64(r.u32()))
				continue
			}
			switch op := r.byte(); op {
			case 0xd2: // ref.func
				seg.funcs = append(seg.funcs, int64(r.u32()))
			case 0xd0: // ref.null
				r.byte()
				seg.funcs = append(seg.funcs, -1)
			default:
				if r.err == nil {
					return unsupported("element expression opcode 0x%02x", op)
				}
			}
			if end := r.byte(); end != 0x0b && r.err == nil {
				return unsupported("element expression longer than one instruction")
			}
		}
		if active {
			cm.elems = append(cm.elems, seg)
		}
	}
	return r.err
}

// readConstI32 reads a constant expression that must be i32.const N end.
func readConstI32(r *reader) (int32, error) {
	op := r.byte()
	if r.err != nil {
		return 0, r.err
	}
	if op != 0x41 {
		return 0, unsupported("offset expression opcode 0x%02x (only i32.const)", op)
	}
	v := r.s32()
	if end := r.byte(); end != 0x0b && r.err == nil {
		return 0, unsupported("offset expression longer than one instruction")
	}
	return v, r.err
}

// readCoreFuncType reads a function type's parameters and results (after
// its 0x60).
func readCoreFuncType(r *reader) abi.Signature {
	var s abi.Signature
	for _, list := range []*[]api.ValueType{&s.Params, &s.Results} {
		n := r.count("value type", 1)
		for i := 0; i < n && r.err == nil; i++ {
			*list = append(*list, readCoreValType(r))
		}
	}
	return s
}

// readCoreValType reads a number, vector or abbreviated reference type.
func readCoreValType(r *reader) api.ValueType {
	switch b := r.byte(); b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return b
	default:
		r.fail("unsupported core value type 0x%02x", b)
	}
	return 0
}

// readCoreExternType reads an import description (externtype).
func readCoreExternType(r *reader) error {
	switch b := r.byte(); b {
	case 0x00:
		r.u32()
	case 0x01:
		readTableType(r)
	case 0x02:
		readLimits(r)
	case 0x03:
		readCoreValType(r)
		if m := r.byte(); m > 1 && r.err == nil {
			r.fail("bad global mutability 0x%02x", m)
		}
	case 0x04:
		r.byte()
		r.u32()
	default:
		r.fail("unknown core extern type 0x%02x", b)
	}
	return r.err
}

func readTableType(r *reader) {
	switch b := r.byte(); b {
	case 0x70, 0x6f:
	default:
		r.fail("unsupported table element type 0x%02x", b)
	}
	readLimits(r)
}

// readLimits reads limits: flags (bit 0: has a maximum, bit 1: shared, bit
// 2: 64-bit), the minimum and the maximum.
func readLimits(r *reader) {
	flags := r.byte()
	if flags > 7 {
		r.fail("unsupported limits flags 0x%02x", flags)
		return
	}
	read := r.u32
	if flags&4 != 0 {
		read = func() uint32 { r.u64(); return 0 }
	}
	read()
	if flags&1 != 0 {
		read()
	}
}

// exportNamed returns the export of kind k named name.
func (cm *coreModule) exportNamed(name string, k externKind) (coreExportDecl, bool) {
	for _, e := range cm.exports {
		if e.name == name && e.kind == k {
			return e, true
		}
	}
	return coreExportDecl{}, false
}

// exportOf returns an export of kind k of index idx.
func (cm *coreModule) exportOf(k externKind, idx uint32) (coreExportDecl, bool) {
	for _, e := range cm.exports {
		if e.kind == k && e.idx == idx {
			return e, true
		}
	}
	return coreExportDecl{}, false
}

// funcType returns the type of function idx (imported or defined).
func (cm *coreModule) funcType(idx uint32) (abi.Signature, bool) {
	imported := cm.funcImports
	var t uint32
	switch {
	case uint64(idx) < uint64(len(imported)):
		t = imported[idx].typeIdx
	case uint64(idx)-uint64(len(imported)) < uint64(len(cm.funcTypes)):
		t = cm.funcTypes[idx-uint32(len(imported))]
	default:
		return abi.Signature{}, false
	}
	if uint64(t) >= uint64(len(cm.types)) {
		return abi.Signature{}, false
	}
	return cm.types[t], true
}
