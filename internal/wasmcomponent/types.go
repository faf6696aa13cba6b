package wasmcomponent

// Type definitions are parsed only to find where they end: Reduce needs no
// type's content (the engine checks the core signatures that matter), but a
// type has no length prefix, so skipping one means reading it.

// typ reads a component-level type definition (deftype).
func (p *parser) typ(r *reader, depth int) error {
	if depth > p.limits.MaxNesting {
		return unsupported("types nested more than %d deep", p.limits.MaxNesting)
	}
	switch b := r.peek(); b {
	case 0x40, 0x43: // func, async func
		r.byte()
		if b == 0x43 && r.err == nil {
			return unsupported("an async function type")
		}
		n := r.count("parameter", 2)
		for i := 0; i < n && r.err == nil; i++ {
			r.name()
			readValType(r)
		}
		switch rb := r.byte(); rb {
		case 0x00:
			readValType(r)
		case 0x01: // named results: only an empty list is valid today
			n := r.count("result", 2)
			for i := 0; i < n && r.err == nil; i++ {
				r.name()
				readValType(r)
			}
		default:
			r.fail("unknown result list form 0x%02x", rb)
		}
	case 0x41: // component type
		r.byte()
		n := r.count("component type declaration", 2)
		for i := 0; i < n && r.err == nil; i++ {
			if r.peek() == 0x03 {
				r.byte()
				readExternName(r)
				if _, err := p.externType(r, depth); err != nil {
					return err
				}
				continue
			}
			if err := p.instanceDecl(r, depth); err != nil {
				return err
			}
		}
	case 0x42: // instance type
		r.byte()
		n := r.count("instance type declaration", 2)
		for i := 0; i < n && r.err == nil; i++ {
			if err := p.instanceDecl(r, depth); err != nil {
				return err
			}
		}
	case 0x3f: // resource
		r.byte()
		switch rep := r.byte(); rep {
		case 0x7f: // i32
		default:
			r.fail("resource representation 0x%02x, want i32", rep)
		}
		readOptionalU32(r)
	case 0x3e:
		r.byte()
		if r.err == nil {
			return unsupported("an async resource destructor")
		}
	default:
		return readDefValType(r)
	}
	return r.err
}

// instanceDecl reads one declaration of an instance or component type.
func (p *parser) instanceDecl(r *reader, depth int) error {
	switch b := r.byte(); b {
	case 0x00:
		return p.coreType(r, depth+1)
	case 0x01:
		return p.typ(r, depth+1)
	case 0x02:
		s := readSort(r)
		switch t := r.byte(); t {
		case 0x00, 0x01:
			r.u32()
			r.name()
		case 0x02:
			r.u32()
			r.u32()
		default:
			r.fail("unknown alias target 0x%02x", t)
		}
		if r.err == nil && s == numSorts {
			r.fail("bad alias sort")
		}
	case 0x04:
		readExternName(r)
		_, err := p.externType(r, depth)
		return err
	default:
		r.fail("unknown instance type declaration 0x%02x", b)
	}
	return r.err
}

// readDefValType reads a defvaltype: a primitive or a compound value type.
func readDefValType(r *reader) error {
	switch b := r.byte(); {
	case isPrimValType(b):
	case b == 0x72: // record
		n := r.count("record field", 2)
		for i := 0; i < n && r.err == nil; i++ {
			r.name()
			readValType(r)
		}
	case b == 0x71: // variant
		n := r.count("variant case", 3)
		for i := 0; i < n && r.err == nil; i++ {
			r.name()
			readOptionalValType(r)
			switch refines := r.byte(); refines {
			case 0x00:
			case 0x01: // refines, in older binaries
				r.u32()
			default:
				r.fail("bad variant case trailer 0x%02x", refines)
			}
		}
	case b == 0x70, b == 0x6b: // list, option
		readValType(r)
	case b == 0x67: // fixed-size list
		readValType(r)
		r.u32()
	case b == 0x6f: // tuple
		n := r.count("tuple element", 1)
		for i := 0; i < n && r.err == nil; i++ {
			readValType(r)
		}
	case b == 0x6e, b == 0x6d: // flags, enum
		n := r.count("label", 1)
		for i := 0; i < n && r.err == nil; i++ {
			r.name()
		}
	case b == 0x6a: // result
		readOptionalValType(r)
		readOptionalValType(r)
	case b == 0x69, b == 0x68: // own, borrow
		r.u32()
	case b == 0x66, b == 0x65: // stream, future
		if r.err == nil {
			return unsupported("stream and future types")
		}
	case b == 0x63: // map
		readValType(r)
		readValType(r)
	default:
		if r.err == nil {
			r.fail("unknown type form 0x%02x", b)
		}
	}
	return r.err
}

// isPrimValType reports the primitive value type opcodes: bool..string
// (0x7f..0x73) and error-context (0x64).
func isPrimValType(b byte) bool { return (b >= 0x73 && b <= 0x7f) || b == 0x64 }

// readValType reads a valtype: a type index (non-negative s33) or a
// primitive (a negative s33, one byte).
func readValType(r *reader) {
	v := r.s33()
	if r.err == nil && v < 0 && !isPrimValType(byte(v&0x7f)) {
		r.fail("unknown value type 0x%02x", byte(v&0x7f))
	}
}

func readOptionalValType(r *reader) {
	switch b := r.byte(); b {
	case 0x00:
	case 0x01:
		readValType(r)
	default:
		r.fail("bad option flag 0x%02x", b)
	}
}

func readOptionalU32(r *reader) {
	switch b := r.byte(); b {
	case 0x00:
	case 0x01:
		r.u32()
	default:
		r.fail("bad option flag 0x%02x", b)
	}
}

// coreType reads a core type definition as a component's core type section
// or a type declaration holds it: a function type or a module type. GC
// types (rec, sub, struct, array) are refused: the engine runs none.
func (p *parser) coreType(r *reader, depth int) error {
	if depth > p.limits.MaxNesting {
		return unsupported("types nested more than %d deep", p.limits.MaxNesting)
	}
	switch b := r.byte(); b {
	case 0x60:
		readCoreFuncType(r)
	case 0x50:
		n := r.count("module type declaration", 2)
		for i := 0; i < n && r.err == nil; i++ {
			switch d := r.byte(); d {
			case 0x00: // import
				r.name()
				r.name()
				if err := readCoreExternType(r); err != nil {
					return err
				}
			case 0x01:
				if err := p.coreType(r, depth+1); err != nil {
					return err
				}
			case 0x02: // alias outer type
				if s, t := r.byte(), r.byte(); r.err == nil && (s != 0x10 || t != 0x01) {
					r.fail("module type alias 0x%02x 0x%02x, want an outer type alias", s, t)
				}
				r.u32()
				r.u32()
			case 0x03: // export
				r.name()
				if err := readCoreExternType(r); err != nil {
					return err
				}
			default:
				r.fail("unknown module type declaration 0x%02x", d)
			}
		}
	case 0x00, 0x4e, 0x4f, 0x5e, 0x5f:
		if r.err == nil {
			return unsupported("core GC types")
		}
	default:
		r.fail("unknown core type form 0x%02x", b)
	}
	return r.err
}
