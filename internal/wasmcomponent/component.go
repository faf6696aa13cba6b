package wasmcomponent

import (
	"bytes"
	"errors"
	"fmt"
)

// Headers of the two kinds of WebAssembly binary: the magic, then a 2-byte
// version and a 2-byte layer. A core module's 4-byte version 1 reads as
// version 1, layer 0.
var (
	magic           = []byte("\x00asm")
	componentHeader = []byte("\x00asm\x0d\x00\x01\x00")
	moduleHeader    = []byte("\x00asm\x01\x00\x00\x00")
)

// IsComponent reports whether b starts like a component of the binary
// format version the toolchains emit today (0x0d, layer 1).
func IsComponent(b []byte) bool { return bytes.HasPrefix(b, componentHeader) }

// IsCoreModule reports whether b starts like a core WebAssembly module
// (version 1, which is layer 0).
func IsCoreModule(b []byte) bool { return bytes.HasPrefix(b, moduleHeader) }

// IsComponentLayer reports whether b has the component layer (1) whatever
// its version, so that a component of an older or newer draft is refused
// as a component of the wrong version rather than as a broken module.
func IsComponentLayer(b []byte) bool {
	return len(b) >= 8 && bytes.HasPrefix(b, magic) && b[6] == 1 && b[7] == 0
}

// Limits bound what Reduce accepts, on top of the binary being well formed.
// Every length and count read from the binary is also checked against the
// bytes left before anything is allocated or looped over.
type Limits struct {
	// MaxBytes bounds the whole component.
	MaxBytes int
	// MaxDefinitions bounds the definitions of all index spaces together,
	// over the component and its nested components (a componentize-js
	// component has about 400).
	MaxDefinitions int
	// MaxNesting bounds how deep components and types nest (wit-component
	// nests one component and instance types three deep).
	MaxNesting int
}

// DefaultLimits are generous for every component the toolchains emit (a
// componentize-js component is 12 MB with ~400 definitions) and keep a
// hostile one from costing more than a pass over its bytes.
var DefaultLimits = Limits{MaxBytes: 256 << 20, MaxDefinitions: 100_000, MaxNesting: 8}

// sort is an index space: the Component Model's sorts, with the core sorts
// kept apart.
type sort uint8

const (
	sortCoreFunc sort = iota
	sortCoreTable
	sortCoreMemory
	sortCoreGlobal
	sortCoreTag
	sortCoreType
	sortCoreModule
	sortCoreInstance
	sortFunc
	sortValue
	sortType
	sortComponent
	sortInstance
	numSorts
)

var sortNames = [numSorts]string{"core func", "core table", "core memory", "core global", "core tag",
	"core type", "core module", "core instance", "func", "value", "type", "component", "instance"}

func (s sort) String() string {
	if s < numSorts {
		return sortNames[s]
	}
	return fmt.Sprintf("sort(%d)", uint8(s))
}

// origin says how an index-space entry was defined.
type origin uint8

const (
	originDefined         origin = iota // a definition of its own section (type, module, component, canon, instance)
	originImport                        // a component import
	originExport                        // an export, which aliases the exported index (ref)
	originAliasExport                   // alias export of instance inst, name
	originAliasCoreExport               // alias core export of core instance inst, name
	originAliasOuter                    // alias outer depth, ref
)

// entry is one index in one index space.
type entry struct {
	origin origin
	name   string // import or export name; alias export name
	inst   uint32 // alias (core) export: the (core) instance
	ref    uint32 // export: the exported index; outer alias: the index
	depth  uint32 // outer alias: how many components out

	canon    *canonDef     // core funcs and funcs defined by canon
	module   *moduleDef    // core modules defined here
	coreInst *coreInstance // core instances defined here
	inst2    *instance     // instances defined here
	comp     *component    // components defined here
}

// moduleDef is a core module embedded in the component.
type moduleDef struct {
	index  int
	bytes  []byte
	offset int // of bytes[0] in the outermost binary
}

// coreInstance is a core instance: an instantiation of a module with named
// argument instances, or a bag of inline exports.
type coreInstance struct {
	instantiate bool
	module      uint32
	args        []coreArg
	exports     []coreExport
}

type coreArg struct {
	name string
	inst uint32
}

type coreExport struct {
	name string
	sort sort
	idx  uint32
}

// instance is a component instance: an instantiation of a component with
// named arguments, or a bag of inline exports.
type instance struct {
	instantiate bool
	component   uint32
	args        []sortIdx // name, sort, idx
	exports     []sortIdx
}

type sortIdx struct {
	name string
	sort sort
	idx  uint32
}

// canonDef is a canonical definition.
type canonDef struct {
	op       canonOp
	coreFunc uint32 // lift: the core func lifted
	fn       uint32 // lower: the func lowered
	typ      uint32 // lift: the func type; resource.*: the resource type
	opts     canonOptions
}

type canonOp uint8

const (
	canonLift canonOp = iota
	canonLower
	canonResourceNew
	canonResourceDrop
	canonResourceRep
)

// canonOptions are a lift's or lower's options, as indices into the core
// index spaces.
type canonOptions struct {
	encoding   StringEncoding
	memory     optIdx
	realloc    optIdx
	postReturn optIdx
}

type optIdx struct {
	set bool
	idx uint32
}

// StringEncoding is a canon option's string encoding.
type StringEncoding uint8

// The string encodings of the canonical ABI; UTF-8 is the default.
const (
	UTF8 StringEncoding = iota
	UTF16
	Latin1UTF16
)

func (e StringEncoding) String() string {
	switch e {
	case UTF8:
		return "utf8"
	case UTF16:
		return "utf16"
	case Latin1UTF16:
		return "latin1+utf16"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// component is a parsed component: its index spaces, imports and exports.
type component struct {
	parent  *component
	spaces  [numSorts][]entry
	imports []sortIdx // name, sort, index in the space the import added to
	exports []sortIdx
}

// parser holds what is shared by a component and the components nested in
// it: the limits and the running count of definitions.
type parser struct {
	limits Limits
	defs   int
}

// parseComponent parses a whole component binary (header included).
func parseComponent(b []byte, limits Limits) (*component, error) {
	if len(b) > limits.MaxBytes {
		return nil, unsupported("component is %d bytes, more than the %d allowed", len(b), limits.MaxBytes)
	}
	p := &parser{limits: limits}
	return p.component(b, 0, nil, 0)
}

func (p *parser) component(b []byte, base int, parent *component, depth int) (*component, error) {
	if depth > p.limits.MaxNesting {
		return nil, unsupported("components nested more than %d deep", p.limits.MaxNesting)
	}
	if !bytes.HasPrefix(b, componentHeader) {
		if IsComponentLayer(b) {
			return nil, unsupported("component binary version 0x%02x (Troupe reads version 0x0d)", b[4])
		}
		return nil, &MalformedError{Offset: base, Msg: "no component header"}
	}
	c := &component{parent: parent}
	r := newReader(b, base)
	r.pos = len(componentHeader)
	for !r.done() {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			break
		}
		content := r.bytes(int(size))
		if r.err != nil {
			break
		}
		sr := newReader(content, base+r.pos-len(content))
		if err := p.section(c, id, sr, depth); err != nil {
			return nil, err
		}
		if sr.err != nil {
			return nil, sr.err
		}
		if !sr.done() {
			return nil, &MalformedError{Offset: sr.offset(), Msg: fmt.Sprintf("section %d has %d bytes past its content", id, sr.remaining())}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// add appends e to space s, counting it against the limits.
func (p *parser) add(c *component, s sort, e entry) error {
	p.defs++
	if p.defs > p.limits.MaxDefinitions {
		return unsupported("more than %d definitions", p.limits.MaxDefinitions)
	}
	if s == sortCoreInstance && e.coreInst == nil {
		// The reducer reads every core instance as an instantiation or
		// a bag of exports; the toolchains alias or export none.
		return unsupported("a core instance it neither instantiates nor builds (an alias or an export of one)")
	}
	c.spaces[s] = append(c.spaces[s], e)
	return nil
}

// check reports an index past the end of its space (an index must name an
// earlier definition, which also makes every reference chain acyclic).
func (c *component) check(r *reader, s sort, idx uint32) {
	if r.err == nil && uint64(idx) >= uint64(len(c.spaces[s])) {
		r.fail("%s index %d out of range (%d defined)", s, idx, len(c.spaces[s]))
	}
}

const (
	secCustom       = 0
	secCoreModule   = 1
	secCoreInstance = 2
	secCoreType     = 3
	secComponent    = 4
	secInstance     = 5
	secAlias        = 6
	secType         = 7
	secCanon        = 8
	secStart        = 9
	secImport       = 10
	secExport       = 11
	secValue        = 12
)

func (p *parser) section(c *component, id byte, r *reader, depth int) error {
	switch id {
	case secCustom:
		r.name()
		r.pos = len(r.b)
		return nil
	case secCoreModule:
		if !bytes.HasPrefix(r.b, moduleHeader) {
			return &MalformedError{Offset: r.base, Msg: "core module section without a core module header"}
		}
		m := &moduleDef{index: len(c.spaces[sortCoreModule]), bytes: r.b, offset: r.base}
		r.pos = len(r.b)
		return p.add(c, sortCoreModule, entry{module: m})
	case secCoreInstance:
		return p.vec(r, "core instance", 2, func() error { return p.coreInstance(c, r) })
	case secCoreType:
		return p.vec(r, "core type", 1, func() error {
			if err := p.coreType(r, depth); err != nil {
				return err
			}
			return p.add(c, sortCoreType, entry{})
		})
	case secComponent:
		nested, err := p.component(r.b, r.base, c, depth+1)
		if err != nil {
			return err
		}
		r.pos = len(r.b)
		return p.add(c, sortComponent, entry{comp: nested})
	case secInstance:
		return p.vec(r, "instance", 2, func() error { return p.instance(c, r) })
	case secAlias:
		return p.vec(r, "alias", 3, func() error { return p.alias(c, r) })
	case secType:
		return p.vec(r, "type", 1, func() error {
			if err := p.typ(r, depth); err != nil {
				return err
			}
			return p.add(c, sortType, entry{})
		})
	case secCanon:
		return p.vec(r, "canon", 2, func() error { return p.canon(c, r) })
	case secStart:
		return unsupported("a component start function")
	case secImport:
		return p.vec(r, "import", 3, func() error { return p.importDef(c, r, depth) })
	case secExport:
		return p.vec(r, "export", 3, func() error { return p.exportDef(c, r, depth) })
	case secValue:
		return unsupported("component values")
	}
	return &MalformedError{Offset: r.base - 1, Msg: fmt.Sprintf("unknown section id %d", id)}
}

// vec reads a vector's count, then calls item for each element.
func (p *parser) vec(r *reader, what string, minSize int, item func() error) error {
	n := r.count(what, minSize)
	for i := 0; i < n && r.err == nil; i++ {
		if err := item(); err != nil {
			return err
		}
	}
	return r.err
}

// readSort reads a sort: 0x00 then a core sort, or a component sort.
func readSort(r *reader) sort {
	switch b := r.byte(); b {
	case 0x00:
		return readCoreSort(r)
	case 0x01:
		return sortFunc
	case 0x02:
		return sortValue
	case 0x03:
		return sortType
	case 0x04:
		return sortComponent
	case 0x05:
		return sortInstance
	default:
		r.fail("unknown sort 0x%02x", b)
	}
	return numSorts
}

func readCoreSort(r *reader) sort {
	switch b := r.byte(); b {
	case 0x00:
		return sortCoreFunc
	case 0x01:
		return sortCoreTable
	case 0x02:
		return sortCoreMemory
	case 0x03:
		return sortCoreGlobal
	case 0x04:
		return sortCoreTag
	case 0x10:
		return sortCoreType
	case 0x11:
		return sortCoreModule
	case 0x12:
		return sortCoreInstance
	default:
		r.fail("unknown core sort 0x%02x", b)
	}
	return numSorts
}

func (p *parser) coreInstance(c *component, r *reader) error {
	ci := &coreInstance{}
	switch b := r.byte(); b {
	case 0x00:
		ci.instantiate = true
		ci.module = r.u32()
		c.check(r, sortCoreModule, ci.module)
		n := r.count("instantiation argument", 3)
		for i := 0; i < n && r.err == nil; i++ {
			name := r.name()
			if s := r.byte(); s != 0x12 && r.err == nil {
				r.fail("core instantiation argument of sort 0x%02x, want an instance", s)
			}
			inst := r.u32()
			c.check(r, sortCoreInstance, inst)
			ci.args = append(ci.args, coreArg{name, inst})
		}
	case 0x01:
		n := r.count("core export", 3)
		for i := 0; i < n && r.err == nil; i++ {
			name := r.name()
			s := readCoreSort(r)
			idx := r.u32()
			if r.err == nil {
				c.check(r, s, idx)
			}
			ci.exports = append(ci.exports, coreExport{name, s, idx})
		}
	default:
		r.fail("unknown core instance form 0x%02x", b)
	}
	if r.err != nil {
		return r.err
	}
	return p.add(c, sortCoreInstance, entry{coreInst: ci})
}

func (p *parser) instance(c *component, r *reader) error {
	in := &instance{}
	switch b := r.byte(); b {
	case 0x00:
		in.instantiate = true
		in.component = r.u32()
		c.check(r, sortComponent, in.component)
		n := r.count("instantiation argument", 3)
		for i := 0; i < n && r.err == nil; i++ {
			name := r.name()
			s := readSort(r)
			idx := r.u32()
			if r.err == nil {
				c.check(r, s, idx)
			}
			in.args = append(in.args, sortIdx{name, s, idx})
		}
	case 0x01:
		n := r.count("export", 3)
		for i := 0; i < n && r.err == nil; i++ {
			name := readExternName(r)
			s := readSort(r)
			idx := r.u32()
			if r.err == nil {
				c.check(r, s, idx)
			}
			in.exports = append(in.exports, sortIdx{name, s, idx})
		}
	default:
		r.fail("unknown instance form 0x%02x", b)
	}
	if r.err != nil {
		return r.err
	}
	return p.add(c, sortInstance, entry{inst2: in})
}

func (p *parser) alias(c *component, r *reader) error {
	s := readSort(r)
	e := entry{}
	switch b := r.byte(); b {
	case 0x00:
		e.origin, e.inst, e.name = originAliasExport, r.u32(), r.name()
		c.check(r, sortInstance, e.inst)
	case 0x01:
		e.origin, e.inst, e.name = originAliasCoreExport, r.u32(), r.name()
		c.check(r, sortCoreInstance, e.inst)
	case 0x02:
		e.origin, e.depth, e.ref = originAliasOuter, r.u32(), r.u32()
		if r.err == nil {
			target := c
			for i := uint32(0); i < e.depth && target != nil; i++ {
				target = target.parent
			}
			if target == nil {
				r.fail("outer alias %d components out, past the outermost", e.depth)
			} else if s != sortType && s != sortCoreType && s != sortCoreModule && s != sortComponent {
				r.fail("outer alias of a %s", s)
			} else {
				target.check(r, s, e.ref)
			}
		}
	default:
		r.fail("unknown alias target 0x%02x", b)
	}
	if r.err != nil {
		return r.err
	}
	if e.origin == originAliasCoreExport && s > sortCoreInstance {
		return &MalformedError{Offset: r.offset(), Msg: fmt.Sprintf("core export alias of a %s", s)}
	}
	return p.add(c, s, e)
}

func (p *parser) canon(c *component, r *reader) error {
	d := &canonDef{}
	var s sort
	switch op := r.byte(); op {
	case 0x00:
		if b := r.byte(); b != 0x00 && r.err == nil {
			r.fail("canon lift of a core sort 0x%02x, want func", b)
		}
		d.op, d.coreFunc = canonLift, r.u32()
		c.check(r, sortCoreFunc, d.coreFunc)
		if err := readCanonOptions(c, r, &d.opts); err != nil {
			return err
		}
		d.typ = r.u32()
		c.check(r, sortType, d.typ)
		s = sortFunc
	case 0x01:
		if b := r.byte(); b != 0x00 && r.err == nil {
			r.fail("canon lower of sort 0x%02x, want func", b)
		}
		d.op, d.fn = canonLower, r.u32()
		c.check(r, sortFunc, d.fn)
		if err := readCanonOptions(c, r, &d.opts); err != nil {
			return err
		}
		s = sortCoreFunc
	case 0x02, 0x03, 0x04:
		d.op = map[byte]canonOp{0x02: canonResourceNew, 0x03: canonResourceDrop, 0x04: canonResourceRep}[op]
		d.typ = r.u32()
		c.check(r, sortType, d.typ)
		s = sortCoreFunc
	default:
		if r.err != nil {
			return r.err
		}
		return unsupported("canon built-in 0x%02x (async, threads or error-context)", op)
	}
	if r.err != nil {
		return r.err
	}
	return p.add(c, s, entry{canon: d})
}

func readCanonOptions(c *component, r *reader, o *canonOptions) error {
	n := r.count("canon option", 1)
	encodingSet := false
	for i := 0; i < n && r.err == nil; i++ {
		switch b := r.byte(); b {
		case 0x00, 0x01, 0x02:
			if encodingSet {
				r.fail("two string encodings")
			}
			o.encoding, encodingSet = StringEncoding(b), true
		case 0x03:
			setOpt(r, &o.memory, "memory")
			c.check(r, sortCoreMemory, o.memory.idx)
		case 0x04:
			setOpt(r, &o.realloc, "realloc")
			c.check(r, sortCoreFunc, o.realloc.idx)
		case 0x05:
			setOpt(r, &o.postReturn, "post-return")
			c.check(r, sortCoreFunc, o.postReturn.idx)
		case 0x06, 0x07:
			if r.err == nil {
				return unsupported("an async canon option")
			}
		default:
			if r.err == nil {
				return unsupported("canon option 0x%02x", b)
			}
		}
	}
	return r.err
}

func setOpt(r *reader, o *optIdx, what string) {
	if o.set {
		r.fail("two %s options", what)
	}
	o.set, o.idx = true, r.u32()
}

func (p *parser) importDef(c *component, r *reader, depth int) error {
	name := readExternName(r)
	s, err := p.externType(r, depth)
	if err != nil {
		return err
	}
	if r.err != nil {
		return r.err
	}
	c.imports = append(c.imports, sortIdx{name, s, uint32(len(c.spaces[s]))})
	return p.add(c, s, entry{origin: originImport, name: name})
}

func (p *parser) exportDef(c *component, r *reader, depth int) error {
	name := readExternName(r)
	s := readSort(r)
	idx := r.u32()
	if r.err != nil {
		return r.err
	}
	c.check(r, s, idx)
	switch b := r.byte(); b {
	case 0x00:
	case 0x01:
		if _, err := p.externType(r, depth); err != nil {
			return err
		}
	default:
		r.fail("bad export type ascription flag 0x%02x", b)
	}
	if r.err != nil {
		return r.err
	}
	c.exports = append(c.exports, sortIdx{name, s, idx})
	return p.add(c, s, entry{origin: originExport, name: name, ref: idx})
}

// readExternName reads an import or export name with its attributes
// (nameattributes); the attributes are skipped.
func readExternName(r *reader) string {
	switch b := r.byte(); b {
	case 0x00, 0x01:
		return r.name()
	case 0x02:
		name := r.name()
		n := r.count("name attribute", 2)
		for i := 0; i < n && r.err == nil; i++ {
			switch a := r.byte(); a {
			case 0x00, 0x01, 0x02:
				r.name()
			default:
				r.fail("unknown name attribute 0x%02x", a)
			}
		}
		return name
	default:
		r.fail("unknown extern name form 0x%02x", b)
	}
	return ""
}

// externType reads an externtype and returns the sort it describes.
func (p *parser) externType(r *reader, depth int) (sort, error) {
	switch b := r.byte(); b {
	case 0x00:
		if s := r.byte(); s != 0x11 && r.err == nil {
			r.fail("core extern type 0x%02x, want a module", s)
		}
		r.u32()
		return sortCoreModule, r.err
	case 0x01:
		r.u32()
		return sortFunc, r.err
	case 0x02:
		if r.err == nil {
			return 0, unsupported("component values")
		}
	case 0x03:
		switch bound := r.byte(); bound {
		case 0x00:
			r.u32()
		case 0x01:
		default:
			r.fail("unknown type bound 0x%02x", bound)
		}
		return sortType, r.err
	case 0x04:
		r.u32()
		return sortComponent, r.err
	case 0x05:
		r.u32()
		return sortInstance, r.err
	default:
		r.fail("unknown extern type 0x%02x", b)
	}
	return 0, r.err
}

// errUnsupported marks a component this package cannot reduce.
var errUnsupported = errors.New("unsupported component shape")

// ErrUnsupported is what errors.Is matches for a well-formed component of a
// shape Reduce does not support.
var ErrUnsupported = errUnsupported

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnsupported, fmt.Sprintf(format, args...))
}
