package wasmcomponent

import (
	"encoding/binary"
)

// rename rewrites the main module's import section when an import must be
// served under another name than the module imports it by: wit-component
// gives a module's second import of the same preview1 function a new name
// ("fd_write [v2]"), which no preview1 host exports. Only the names change:
// the import count, order and descriptions are kept byte for byte, so every
// function index, and so every other section, stays valid unchanged.
func (rd *reducer) rename(out *Reduced) error {
	return out.Rename(func(i Import) (string, string) { return i.HostModule, i.HostName })
}

// rewriteImports returns a copy of the core module m (base is its offset,
// for messages) whose function imports are renamed by rename, called with
// each function import's index among the function imports. Everything but
// the import section is copied unchanged.
func rewriteImports(m []byte, base int, rename func(i int, module, name string) (string, string, error)) ([]byte, error) {
	r := newReader(m, base)
	if !IsCoreModule(m) {
		return nil, &MalformedError{Offset: base, Msg: "not a core module"}
	}
	r.pos = len(moduleHeader)
	for !r.done() {
		start := r.pos
		id := r.byte()
		size := r.u32()
		content := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		if id != coreSecImport {
			continue
		}
		sr := newReader(content, base+r.pos-len(content))
		n := sr.count("core import", 4)
		sec := binary.AppendUvarint(nil, uint64(n))
		fn := 0
		for i := 0; i < n && sr.err == nil; i++ {
			module, name := sr.name(), sr.name()
			descStart := sr.pos
			kind := externKind(sr.peek())
			switch kind {
			case externFunc:
				sr.byte()
				sr.u32()
			case externTag:
				sr.byte()
				sr.byte()
				sr.u32()
			default:
				if err := readCoreExternType(sr); err != nil {
					return nil, err
				}
			}
			if sr.err != nil {
				return nil, sr.err
			}
			if kind == externFunc {
				var err error
				if module, name, err = rename(fn, module, name); err != nil {
					return nil, err
				}
				fn++
			}
			sec = appendName(sec, module)
			sec = appendName(sec, name)
			sec = append(sec, content[descStart:sr.pos]...)
		}
		if sr.err != nil {
			return nil, sr.err
		}
		if !sr.done() {
			return nil, &MalformedError{Offset: sr.offset(), Msg: "import section has bytes past its imports"}
		}
		out := make([]byte, 0, len(m)-len(content)+len(sec)+5)
		out = append(out, m[:start]...)
		out = append(out, coreSecImport)
		out = binary.AppendUvarint(out, uint64(len(sec)))
		out = append(out, sec...)
		return append(out, m[r.pos:]...), nil
	}
	if r.err != nil {
		return nil, r.err
	}
	return nil, &MalformedError{Offset: base, Msg: "no import section to rewrite"}
}

func appendName(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
