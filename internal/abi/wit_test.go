package abi

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/tetratelabs/wazero/api"
)

// The drift test: wit/*.wit is parsed and every function of every world is
// lowered with the canonical ABI's rules (flattening, return areas,
// layouts), then compared with the table. A WIT edit without the table, or
// a table edit without the WIT, fails here.

// witDir is the repository's wit/, from this package's directory.
var witDir = filepath.Join("..", "..", "wit")

// witType is a parsed WIT type: a name (string, u64, option, record
// names...) with its arguments.
type witType struct {
	name string
	args []witType
}

type witFunc struct {
	name   string
	params []witType
	result *witType
}

type witInterface struct {
	pkg, name string
	file      string // "wit/<file>" that declares it
	funcs     []witFunc
	records   map[string][]witType // fields in order
}

type witWorld struct {
	name             string
	imports, exports []string // interface paths, "pkg/iface"
}

type witFile struct {
	pkg        string
	interfaces map[string]*witInterface
	worlds     []witWorld
}

// witParser reads the subset of WIT the contract uses: package, interface
// (records and funcs) and world (import/export of interfaces).
type witParser struct {
	toks []string
	pos  int
	err  error
}

func tokenize(src string) []string {
	var toks []string
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		for i := 0; i < len(line); {
			c := rune(line[i])
			switch {
			case unicode.IsSpace(c):
				i++
			case c == '-' && i+1 < len(line) && line[i+1] == '>':
				toks = append(toks, "->")
				i += 2
			case unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_':
				j := i
				for j < len(line) && (unicode.IsLetter(rune(line[j])) || unicode.IsDigit(rune(line[j])) || line[j] == '-' || line[j] == '_') {
					j++
				}
				toks = append(toks, line[i:j])
				i = j
			default:
				toks = append(toks, string(c))
				i++
			}
		}
	}
	return toks
}

func (p *witParser) next() string {
	if p.pos >= len(p.toks) {
		p.fail("unexpected end of file")
		return ""
	}
	p.pos++
	return p.toks[p.pos-1]
}

func (p *witParser) peek() string {
	if p.pos >= len(p.toks) {
		return ""
	}
	return p.toks[p.pos]
}

func (p *witParser) expect(tok string) {
	if got := p.next(); got != tok && p.err == nil {
		p.fail(fmt.Sprintf("want %q, got %q", tok, got))
	}
}

func (p *witParser) fail(msg string) {
	if p.err == nil {
		p.err = fmt.Errorf("token %d: %s", p.pos, msg)
	}
	p.pos = len(p.toks)
}

// path reads "name" or "ns:pkg/name".
func (p *witParser) path() string {
	s := p.next()
	if p.peek() == ":" {
		p.next()
		s += ":" + p.next()
		p.expect("/")
		s += "/" + p.next()
	}
	return s
}

func (p *witParser) typ() witType {
	t := witType{name: p.next()}
	if p.peek() == "<" {
		p.next()
		for p.err == nil {
			t.args = append(t.args, p.typ())
			if p.peek() == "," {
				p.next()
				continue
			}
			p.expect(">")
			break
		}
	}
	return t
}

func parseWIT(src string) (*witFile, error) {
	p := &witParser{toks: tokenize(src)}
	f := &witFile{interfaces: map[string]*witInterface{}}
	p.expect("package")
	f.pkg = p.next()
	p.expect(":")
	f.pkg += ":" + p.next()
	p.expect(";")
	for p.err == nil && p.pos < len(p.toks) {
		switch kw := p.next(); kw {
		case "interface":
			iface := &witInterface{pkg: f.pkg, name: p.next(), records: map[string][]witType{}}
			p.expect("{")
			for p.err == nil && p.peek() != "}" {
				if p.peek() == "record" {
					p.next()
					name := p.next()
					p.expect("{")
					for p.err == nil && p.peek() != "}" {
						p.next() // field name
						p.expect(":")
						iface.records[name] = append(iface.records[name], p.typ())
						if p.peek() == "," {
							p.next()
						}
					}
					p.expect("}")
					continue
				}
				fn := witFunc{name: p.next()}
				p.expect(":")
				p.expect("func")
				p.expect("(")
				for p.err == nil && p.peek() != ")" {
					p.next() // param name
					p.expect(":")
					fn.params = append(fn.params, p.typ())
					if p.peek() == "," {
						p.next()
					}
				}
				p.expect(")")
				if p.peek() == "->" {
					p.next()
					r := p.typ()
					fn.result = &r
				}
				p.expect(";")
				iface.funcs = append(iface.funcs, fn)
			}
			p.expect("}")
			f.interfaces[iface.name] = iface
		case "world":
			w := witWorld{name: p.next()}
			p.expect("{")
			for p.err == nil && p.peek() != "}" {
				dir := p.next()
				path := p.path()
				if !strings.Contains(path, "/") {
					path = f.pkg + "/" + path
				}
				p.expect(";")
				switch dir {
				case "import":
					w.imports = append(w.imports, path)
				case "export":
					w.exports = append(w.exports, path)
				default:
					p.fail("world item " + dir)
				}
			}
			p.expect("}")
			f.worlds = append(f.worlds, w)
		default:
			p.fail("unexpected " + kw)
		}
	}
	return f, p.err
}

// lowering computes the canonical ABI's core types and memory layouts of
// WIT types, resolving record names in one interface.
type lowering struct {
	iface *witInterface
	t     *testing.T
}

func alignTo(n, a uint32) uint32 { return (n + a - 1) / a * a }

// flat is the type's flattened core types.
func (l lowering) flat(t witType) []api.ValueType {
	switch t.name {
	case "string", "list":
		return []api.ValueType{I32, I32}
	case "bool", "u8", "s8", "u16", "s16", "u32", "s32", "char":
		return []api.ValueType{I32}
	case "u64", "s64":
		return []api.ValueType{I64}
	case "f32":
		return []api.ValueType{api.ValueTypeF32}
	case "f64":
		return []api.ValueType{F64}
	case "_":
		return nil
	case "option":
		return append([]api.ValueType{I32}, l.flat(t.args[0])...)
	case "result":
		return append([]api.ValueType{I32}, join(l.flat(t.args[0]), l.flat(t.args[1]))...)
	case "tuple":
		var out []api.ValueType
		for _, a := range t.args {
			out = append(out, l.flat(a)...)
		}
		return out
	}
	fields, ok := l.iface.records[t.name]
	if !ok {
		l.t.Fatalf("unknown WIT type %s", t.name)
	}
	return l.flat(witType{name: "tuple", args: fields})
}

// join merges the flattenings of two variant cases, position by position.
func join(a, b []api.ValueType) []api.ValueType {
	out := slices.Clone(a)
	for i, t := range b {
		switch {
		case i >= len(out):
			out = append(out, t)
		case out[i] == t:
		case (out[i] == I32 && t == api.ValueTypeF32) || (out[i] == api.ValueTypeF32 && t == I32):
			out[i] = I32
		default:
			out[i] = I64
		}
	}
	return out
}

// layout is the type's size and alignment in memory; offsets, for a record
// or tuple, where each field starts.
func (l lowering) layout(t witType) (lay Layout, offsets []uint32) {
	switch t.name {
	case "string", "list":
		return Layout{8, 4}, nil
	case "bool", "u8", "s8":
		return Layout{1, 1}, nil
	case "u16", "s16":
		return Layout{2, 2}, nil
	case "u32", "s32", "char", "f32":
		return Layout{4, 4}, nil
	case "u64", "s64", "f64":
		return Layout{8, 8}, nil
	case "_":
		return Layout{0, 1}, nil
	case "option", "result":
		cases := t.args
		if t.name == "option" {
			cases = []witType{{name: "_"}, t.args[0]}
		}
		var size, align uint32 = 0, 1
		for _, c := range cases {
			cl, _ := l.layout(c)
			size, align = max(size, cl.Size), max(align, cl.Align)
		}
		payload := alignTo(1, align) // a one-byte discriminant
		return Layout{alignTo(payload+size, align), align}, []uint32{payload}
	case "tuple":
		var off, align uint32 = 0, 1
		for _, a := range t.args {
			al, _ := l.layout(a)
			off = alignTo(off, al.Align)
			offsets = append(offsets, off)
			off += al.Size
			align = max(align, al.Align)
		}
		return Layout{alignTo(off, align), align}, offsets
	}
	fields, ok := l.iface.records[t.name]
	if !ok {
		l.t.Fatalf("unknown WIT type %s", t.name)
	}
	return l.layout(witType{name: "tuple", args: fields})
}

// The canonical ABI's bounds on what is passed as core values.
const (
	maxFlatParams  = 16
	maxFlatResults = 1
)

// lowerImport is fn as a guest imports it: results wider than one core
// value go to a return area whose address is an extra last parameter.
func (l lowering) lowerImport(module string, fn witFunc) Import {
	imp := Import{Module: module, Name: fn.name}
	imp.Params, imp.Results = l.params(fn), nil
	if fn.result != nil {
		res := l.flat(*fn.result)
		if len(res) > maxFlatResults {
			imp.Params = append(imp.Params, I32)
			imp.Result, _ = l.layout(*fn.result)
		} else {
			imp.Results = res
		}
	}
	return imp
}

// lowerExport is fn as a guest exports it: results wider than one core
// value are returned as a pointer to memory the guest owns.
func (l lowering) lowerExport(name string, fn witFunc) Export {
	exp := Export{Name: name}
	exp.Params = l.params(fn)
	if fn.result != nil {
		res := l.flat(*fn.result)
		if len(res) > maxFlatResults {
			exp.Results = []api.ValueType{I32}
			exp.Result, _ = l.layout(*fn.result)
		} else {
			exp.Results = res
		}
	}
	return exp
}

func (l lowering) params(fn witFunc) []api.ValueType {
	var ps []api.ValueType
	for _, p := range fn.params {
		ps = append(ps, l.flat(p)...)
	}
	if len(ps) > maxFlatParams {
		return []api.ValueType{I32}
	}
	return ps
}

// contract is what the WIT files declare, lowered.
type contract struct {
	imports []Import
	exports map[string]Export // by name, with Required set from the worlds
	files   map[string]*witFile
}

// witFiles are the contract's files under wit/, in the order their worlds
// are read (so that imports come out in the WIT's order).
var witFiles = []string{"theater-simple.wit", "theater-message.wit", "troupe-ticker.wit", "troupe-result-area.wit"}

func loadContract(t *testing.T) contract {
	t.Helper()
	c := contract{exports: map[string]Export{}, files: map[string]*witFile{}}
	ifaces := map[string]*witInterface{} // "pkg/iface"
	for _, name := range witFiles {
		src, err := os.ReadFile(filepath.Join(witDir, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseWIT(string(src))
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		c.files[name] = f
		for _, iface := range f.interfaces {
			path := iface.pkg + "/" + iface.name
			if ifaces[path] != nil {
				t.Fatalf("interface %s is declared twice", path)
			}
			iface.file = "wit/" + name
			ifaces[path] = iface
		}
	}
	var worlds []witWorld
	for _, name := range witFiles {
		worlds = append(worlds, c.files[name].worlds...)
	}
	if len(worlds) == 0 {
		t.Fatal("the WIT declares no world")
	}
	seenImport := map[string]bool{}
	exportedBy := map[string]int{}
	for _, w := range worlds {
		for _, path := range w.imports {
			iface := ifaces[path]
			if iface == nil {
				t.Fatalf("world %s imports unknown interface %s", w.name, path)
			}
			if seenImport[path] {
				continue
			}
			seenImport[path] = true
			for _, fn := range iface.funcs {
				c.imports = append(c.imports, lowering{iface, t}.lowerImport(path, fn))
			}
		}
		for _, path := range w.exports {
			iface := ifaces[path]
			if iface == nil {
				t.Fatalf("world %s exports unknown interface %s", w.name, path)
			}
			exportedBy[path]++
			for _, fn := range iface.funcs {
				e := lowering{iface, t}.lowerExport(path+"#"+fn.name, fn)
				e.WIT = iface.file
				c.exports[e.Name] = e
			}
		}
	}
	// An export is required when every world exports its interface.
	for path, n := range exportedBy {
		for name, e := range c.exports {
			if strings.HasPrefix(name, path+"#") {
				e.Required = n == len(worlds)
				c.exports[name] = e
			}
		}
	}
	return c
}

func TestTableIsTheLoweringOfTheWIT(t *testing.T) {
	c := loadContract(t)

	// Imports: the same functions, in the WIT's order, with the same
	// core types and return areas.
	if len(c.imports) != len(Imports) {
		t.Errorf("the WIT declares %d imports, the table %d", len(c.imports), len(Imports))
	}
	for i, want := range c.imports {
		if i >= len(Imports) {
			t.Errorf("the table lacks %s.%s", want.Module, want.Name)
			continue
		}
		got := Imports[i]
		if got.Module != want.Module || got.Name != want.Name {
			t.Errorf("import %d: table has %s.%s, the WIT %s.%s", i, got.Module, got.Name, want.Module, want.Name)
			continue
		}
		if !got.Signature.Equal(want.Signature) || got.Result != want.Result {
			t.Errorf("%s.%s: table %s area %+v, the WIT lowers to %s area %+v", got.Module, got.Name, got.Signature, got.Result, want.Signature, want.Result)
		}
		if len(got.ParamNames) != 0 && len(got.ParamNames) != len(got.Params) {
			t.Errorf("%s.%s: %d parameter names for %d parameters", got.Module, got.Name, len(got.ParamNames), len(got.Params))
		}
	}

	// Exports: each WIT function and its post-return; the canonical ABI
	// adds cabi_realloc and a reactor's _initialize.
	want := map[string]Export{}
	for name, e := range c.exports {
		want[name] = e
		if e.Result != (Layout{}) {
			post := PostReturn(e)
			want[post.Name] = post
		}
	}
	want[Realloc.Name] = Export{Name: Realloc.Name, Signature: Signature{Params: []api.ValueType{I32, I32, I32, I32}, Results: []api.ValueType{I32}}, Required: true}
	want[Initialize.Name] = Export{Name: Initialize.Name}
	table := map[string]Export{}
	for _, e := range Exports {
		if _, dup := table[e.Name]; dup {
			t.Errorf("the table lists %s twice", e.Name)
		}
		table[e.Name] = e
	}
	for name, w := range want {
		got, ok := table[name]
		if !ok {
			t.Errorf("the table lacks export %s", name)
			continue
		}
		if !got.Signature.Equal(w.Signature) || got.Result != w.Result || got.Required != w.Required || got.WIT != w.WIT {
			t.Errorf("export %s: table %s area %+v required %v in %q, the WIT lowers to %s area %+v required %v in %q",
				name, got.Signature, got.Result, got.Required, got.WIT, w.Signature, w.Result, w.Required, w.WIT)
		}
		if len(got.ParamNames) != 0 && len(got.ParamNames) != len(got.Params) {
			t.Errorf("export %s: %d parameter names for %d parameters", name, len(got.ParamNames), len(got.Params))
		}
	}
	for name := range table {
		if _, ok := want[name]; !ok {
			t.Errorf("the table's export %s is not in the WIT", name)
		}
	}
}

// TestLayoutOffsetsFollowTheWIT checks the field offsets the table names
// against the canonical ABI's layout of the WIT types.
func TestLayoutOffsetsFollowTheWIT(t *testing.T) {
	c := loadContract(t)
	runtime := c.files["theater-simple.wit"].interfaces["runtime"]
	if runtime == nil {
		t.Fatal("theater-simple.wit has no runtime interface")
	}
	l := lowering{runtime, t}
	sys, offs := l.layout(witType{name: "system-info"})
	if sys != SystemInfo {
		t.Errorf("system-info is %+v, the table says %+v", sys, SystemInfo)
	}
	wantOffs := []uint32{SysInfoHostname, SysInfoOSType, SysInfoOSRelease, SysInfoCPUCount, SysInfoMemoryTotal, SysInfoMemoryAvailable, SysInfoUptime}
	if !slices.Equal(offs, wantOffs) {
		t.Errorf("system-info fields lie at %v, the table says %v", offs, wantOffs)
	}
	str := witType{name: "string"}
	if _, offs := l.layout(witType{name: "option", args: []witType{str}}); offs[0] != OptionPayload {
		t.Errorf("option<string>'s payload is at %d, the table says %d", offs[0], OptionPayload)
	}
	if _, offs := l.layout(witType{name: "result", args: []witType{{name: "_"}, str}}); offs[0] != ResultPayload {
		t.Errorf("result<_, string>'s payload is at %d, the table says %d", offs[0], ResultPayload)
	}
	// result<tuple<option<list<u8>>>, string>: the option's discriminant,
	// then the list (ptr, len) at the option's payload.
	list := witType{name: "list", args: []witType{{name: "u8"}}}
	opt := witType{name: "option", args: []witType{list}}
	_, roffs := l.layout(witType{name: "result", args: []witType{{name: "tuple", args: []witType{opt}}, str}})
	_, ooffs := l.layout(opt)
	if got := roffs[0]; got != StateOption {
		t.Errorf("the state's option lies at %d, the table says %d", got, StateOption)
	}
	if got := roffs[0] + ooffs[0]; got != StatePtr || got+4 != StateLen {
		t.Errorf("the state's list lies at %d, the table says ptr %d len %d", got, StatePtr, StateLen)
	}
	// handle-request's result: the ok tuple (state option, tuple(response
	// option)) at the result's payload.
	msgs := c.files["theater-message.wit"].interfaces["message-server-client"]
	if msgs == nil {
		t.Fatal("theater-message.wit has no message-server-client interface")
	}
	var handleRequest *witType
	for _, fn := range msgs.funcs {
		if fn.name == "handle-request" {
			handleRequest = fn.result
		}
	}
	if handleRequest == nil {
		t.Fatal("message-server-client has no handle-request with a result")
	}
	lm := lowering{msgs, t}
	lay, offs := lm.layout(*handleRequest)
	if lay != RequestResult {
		t.Errorf("handle-request's result is %+v, the table says %+v", lay, RequestResult)
	}
	okTuple := handleRequest.args[0]
	_, toffs := lm.layout(okTuple)
	if got := offs[0] + toffs[0]; got != StateOption {
		t.Errorf("handle-request's state option lies at %d, the table says %d", got, StateOption)
	}
	if got := offs[0] + toffs[0] + ooffs[0]; got != StatePtr {
		t.Errorf("handle-request's state list lies at %d, the table says %d", got, StatePtr)
	}
	_, inner := lm.layout(okTuple.args[1])
	if got := offs[0] + toffs[1] + inner[0]; got != ResponseOption {
		t.Errorf("handle-request's response option lies at %d, the table says %d", got, ResponseOption)
	}
	if got := offs[0] + toffs[1] + inner[0] + ooffs[0]; got != ResponsePtr || got+4 != ResponseLen {
		t.Errorf("handle-request's response list lies at %d, the table says ptr %d len %d", got, ResponsePtr, ResponseLen)
	}
}

// TestWITFiles keeps wit/ in its shape: the ticking/ package links the
// top-level files, and theater-simple.wit is the shared contract verbatim.
func TestWITFiles(t *testing.T) {
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	simple := read(filepath.Join(witDir, "theater-simple.wit"))
	ticker := read(filepath.Join(witDir, "troupe-ticker.wit"))
	message := read(filepath.Join(witDir, "theater-message.wit"))
	if !bytes.Equal(read(filepath.Join(witDir, "ticking", "troupe-ticker.wit")), ticker) ||
		!bytes.Equal(read(filepath.Join(witDir, "ticking", "deps", "theater-simple.wit")), simple) {
		t.Error("wit/ticking does not link the top-level WIT files")
	}
	// wit/messaging is package theater:simple in one directory: the
	// shared contract and its message interfaces.
	if !bytes.Equal(read(filepath.Join(witDir, "messaging", "theater-simple.wit")), simple) ||
		!bytes.Equal(read(filepath.Join(witDir, "messaging", "theater-message.wit")), message) {
		t.Error("wit/messaging does not link the top-level WIT files")
	}
	// CI checks out the requirements beside the repository.
	if shared, err := os.ReadFile(filepath.Join(witDir, "..", "..", "shared", "wit", "theater-simple.wit")); err == nil && !bytes.Equal(shared, simple) {
		t.Error("wit/theater-simple.wit is not the shared contract verbatim")
	}
}

// TestParseWIT pins the parser on the shapes the contract uses, and on its
// refusal of what it does not understand.
func TestParseWIT(t *testing.T) {
	f, err := parseWIT(`package a:b;
// a comment
interface i {
    record r { x: u32, y: list<u8>, }
    /// doc
    f: func(s: string, o: option<list<u8>>) -> result<tuple<option<list<u8>>>, string>;
    g: func();
}
world w { import i; export c:d/e; }`)
	if err != nil {
		t.Fatal(err)
	}
	i := f.interfaces["i"]
	if i == nil || len(i.funcs) != 2 || len(i.records["r"]) != 2 || i.funcs[0].result == nil || i.funcs[1].result != nil {
		t.Fatalf("parsed %+v", i)
	}
	if w := f.worlds[0]; !slices.Equal(w.imports, []string{"a:b/i"}) || !slices.Equal(w.exports, []string{"c:d/e"}) {
		t.Fatalf("world %+v", w)
	}
	imp := lowering{i, t}.lowerImport("a:b/i", i.funcs[0])
	if got := imp.Signature.String(); got != "(i32 i32 i32 i32 i32 i32) -> ()" || imp.Result != (Layout{16, 4}) {
		t.Errorf("f lowers to %s area %+v", got, imp.Result)
	}
	for _, bad := range []string{"", "package a:b; interface i { f: func(; }", "package a:b; resource r;"} {
		if _, err := parseWIT(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}
