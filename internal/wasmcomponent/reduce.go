package wasmcomponent

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/troupe-dev/troupe/internal/abi"
)

// Reduced is a component reduced to its main core module: the module the
// engine compiles and runs, and how the component wires each of its imports
// and exports, so the engine can serve them directly.
type Reduced struct {
	// Module is the main core module. It is the component's own bytes (a
	// sub-slice of the input) unless an import had to be renamed to the
	// function that serves it, in which case only its import section is
	// rewritten (Renamed).
	Module []byte
	// Renamed reports that Module's import section was rewritten.
	Renamed bool
	// ModuleIndex is the main module's index among the component's core
	// modules; ModuleOffset is where its bytes start in the component.
	ModuleIndex, ModuleOffset int
	// Imports are the main module's function imports, in its import order.
	Imports []Import
	// Exports are the component's lifted functions, in export order.
	Exports []Export
	// Initialize is the main module's export that the component runs when
	// it is instantiated (wit-component's fixup start function):
	// "_initialize", or "" when none is run.
	Initialize string
	// Adapter is the core module index of the wasi_snapshot_preview1
	// adapter the reduction dropped, -1 when the component has none.
	Adapter int
	// Dropped counts the component's other core modules, which the
	// reduction leaves out: the shim, the fixup and the adapter.
	Dropped int

	// original is the main module's bytes as the component holds them.
	original []byte
}

// Rename changes the names the reduced Module imports functions under:
// host returns, for each import, the module and name the host serves it
// as (its HostModule and HostName to keep them). Only the import section
// is rewritten; Imports' HostModule and HostName follow.
func (r *Reduced) Rename(host func(Import) (module, name string)) error {
	imports := slices.Clone(r.Imports)
	changed := false
	for i := range imports {
		imports[i].HostModule, imports[i].HostName = host(imports[i])
		if imports[i].HostModule != imports[i].Module || imports[i].HostName != imports[i].Name {
			changed = true
		}
	}
	if !changed {
		r.Imports, r.Module, r.Renamed = imports, r.original, false
		return nil
	}
	mod, err := rewriteImports(r.original, r.ModuleOffset, func(i int, module, name string) (string, string, error) {
		if i >= len(imports) || imports[i].Module != module || imports[i].Name != name {
			return "", "", fmt.Errorf("function import %d is %s %s, not the one reduced", i, module, name)
		}
		return imports[i].HostModule, imports[i].HostName, nil
	})
	if err != nil {
		return err
	}
	r.Imports, r.Module, r.Renamed = imports, mod, true
	return nil
}

// ImportKind says how the component satisfies an import of the main module.
type ImportKind uint8

const (
	// Lowered is a canon lower of a function of an interface the
	// component imports (theater:simple/runtime, wasi:io/streams@0.2.12, ...).
	Lowered ImportKind = iota + 1
	// ResourceDrop is a canon resource.drop of a resource type of an
	// imported interface.
	ResourceDrop
	// Preview1 is a function of the wasi_snapshot_preview1 adapter, which
	// the host replaces by its native preview 1.
	Preview1
)

func (k ImportKind) String() string {
	switch k {
	case Lowered:
		return "lowered"
	case ResourceDrop:
		return "resource.drop"
	case Preview1:
		return "preview1"
	}
	return fmt.Sprintf("ImportKind(%d)", uint8(k))
}

// Import is one function import of the main module and what serves it.
type Import struct {
	// Module and Name are what the main module imports, e.g.
	// "wasi:io/poll@0.2.10" and "poll", or "wasi_snapshot_preview1" and
	// "fd_write [v2]".
	Module, Name string
	// Signature is the import's core type.
	Signature abi.Signature
	Kind      ImportKind
	// Interface is the component import that provides the function, e.g.
	// "theater:simple/runtime" or "wasi:io/poll@0.2.12" (its version may
	// differ from Module's); "wasi_snapshot_preview1" for Preview1.
	Interface string
	// Func is the function's name in Interface ("log",
	// "[method]pollable.block"), the resource's name for ResourceDrop
	// ("pollable"), the adapter's export for Preview1 ("fd_write").
	Func string
	// Options are a Lowered import's canon options.
	Options Options
	// HostModule and HostName are the names the reduced Module imports it
	// under: Module and Name, unless the reduction renamed it (a preview1
	// import is renamed to the adapter function it is bound to, as
	// "fd_write [v2]" to "fd_write").
	HostModule, HostName string
}

// String spells the import and what serves it, for messages and tests.
func (i Import) String() string {
	s := fmt.Sprintf("%s %s %s: %s %s %s", i.Module, i.Name, i.Signature, i.Kind, i.Interface, i.Func)
	if i.Options != (Options{}) {
		s += fmt.Sprintf(" %+v", i.Options)
	}
	if i.HostModule != i.Module || i.HostName != i.Name {
		s += fmt.Sprintf(" (as %s %s)", i.HostModule, i.HostName)
	}
	return s
}

// Options are a canon lift's or lower's options, as the names of the main
// module's exports they refer to.
type Options struct {
	// Memory and Realloc name the main module's memory and allocator
	// exports ("memory", "cabi_realloc"); "" when the option is absent (a
	// function whose values need no memory has none).
	Memory, Realloc string
	// PostReturn names the main module's post-return export of a lift,
	// "" when none.
	PostReturn string
	// StringEncoding is the encoding of strings (UTF-8 by default).
	StringEncoding StringEncoding
}

// Export is one function the component exports, lifted from the main
// module.
type Export struct {
	// Interface and Func name it as the component exports it:
	// "theater:simple/actor" and "init".
	Interface, Func string
	// CoreName is the main module's export that is lifted, which is
	// Interface + "#" + Func: "theater:simple/actor#init".
	CoreName string
	// Signature is CoreName's core type.
	Signature abi.Signature
	// Options are the lift's options; Options.PostReturn is
	// "cabi_post_" + CoreName when the component has one.
	Options Options
}

// Reduce parses a component within DefaultLimits and reduces it; see
// ReduceWithLimits.
func Reduce(b []byte) (*Reduced, error) { return ReduceWithLimits(b, DefaultLimits) }

// ReduceWithLimits reduces the component b to its main core module. The
// error is a *MalformedError when b does not decode, and wraps
// ErrUnsupported ("unsupported component shape: ...") when b is a component
// of another shape than the toolchains' single-module ones.
func ReduceWithLimits(b []byte, limits Limits) (*Reduced, error) {
	c, err := parseComponent(b, limits)
	if err != nil {
		return nil, err
	}
	rd := &reducer{c: c, modules: map[uint32]*coreModule{}, roles: map[uint32]role{}, notShim: map[uint32]bool{}}
	r, err := rd.reduce(b)
	if err != nil {
		return nil, shapeFirst(err)
	}
	return r, nil
}

// shapeFirst puts "unsupported component shape: " in front of an
// unsupported shape's message, whatever context wraps it ("export
// theater:simple/actor#init: unsupported component shape: X" reads
// "unsupported component shape: export theater:simple/actor#init: X"), so
// that every refusal starts the same way in a status condition.
func shapeFirst(err error) error {
	prefix := errUnsupported.Error() + ": "
	msg := err.Error()
	if !errors.Is(err, errUnsupported) || strings.HasPrefix(msg, prefix) {
		return err
	}
	return &shapeError{msg: prefix + strings.Replace(msg, prefix, "", 1), err: err}
}

type shapeError struct {
	msg string
	err error
}

func (e *shapeError) Error() string { return e.msg }
func (e *shapeError) Unwrap() error { return e.err }

// role is what a core instance is in the toolchains' layout.
type role uint8

const (
	roleNone role = iota
	roleMain
	roleShim
	roleFixup
	roleAdapter
)

var roleNames = [...]string{"unknown", "main", "shim", "fixup", "adapter"}

type reducer struct {
	c       *component
	main    uint32 // the main module's core instance
	mainMod *coreModule
	// modules caches parsed core modules by core module index.
	modules map[uint32]*coreModule
	// roles are the core instances the reduction has explained; notShim
	// those isShim found not to be shims.
	roles   map[uint32]role
	notShim map[uint32]bool
	// work counts the steps of the reduction's loops that depend on
	// what the component claims (instances times imports, elements),
	// bounded by maxWork.
	work int
}

// maxWork bounds the reduction's work beyond a pass over the bytes: the
// toolchains' components take a few thousand steps, and a hostile one
// (a glue module instantiated thousands of times, each time scanned for
// every import) is refused after about a second's work at most.
const maxWork = 1 << 22

// spend counts n steps of work against maxWork.
func (rd *reducer) spend(n int) error {
	rd.work += n
	if rd.work > maxWork {
		return unsupported("its glue takes more than %d steps to follow", maxWork)
	}
	return nil
}

// maxSteps bounds how many aliases, shims and fixups one resolution may go
// through; the toolchains' layouts need fewer than ten.
const maxSteps = 64

func (rd *reducer) reduce(b []byte) (*Reduced, error) {
	out := &Reduced{Adapter: -1}
	// Exports first: the lifted functions name the main module.
	type lifted struct {
		iface, fn string
		lift      *canonDef
	}
	var lifts []lifted
	for _, ex := range rd.c.exports {
		switch ex.sort {
		case sortInstance:
			funcs, err := rd.instanceFuncs(ex.idx)
			if err != nil {
				return nil, fmt.Errorf("export %s: %w", ex.name, err)
			}
			for _, f := range funcs {
				lift, err := rd.liftOf(f.idx)
				if err != nil {
					return nil, fmt.Errorf("export %s#%s: %w", ex.name, f.name, err)
				}
				lifts = append(lifts, lifted{ex.name, f.name, lift})
			}
		case sortType:
			// Exported types carry no code.
		case sortFunc:
			return nil, unsupported("exports the bare function %q (an actor's world exports interfaces)", ex.name)
		default:
			return nil, unsupported("exports a %s (%q)", ex.sort, ex.name)
		}
	}
	if len(lifts) == 0 {
		return nil, unsupported("exports no function")
	}
	mainSet := false
	for _, l := range lifts {
		inst, name, err := rd.coreExportOf(sortCoreFunc, l.lift.coreFunc)
		if err != nil {
			return nil, fmt.Errorf("export %s#%s: %w", l.iface, l.fn, err)
		}
		if mainSet && inst != rd.main {
			return nil, unsupported("exports functions of more than one core instance")
		}
		rd.main, mainSet = inst, true
		if rd.mainMod == nil {
			ci := rd.coreInstance(inst)
			if ci == nil || !ci.instantiate {
				return nil, unsupported("export %s#%s is not a function of an instantiated core module", l.iface, l.fn)
			}
			m, err := rd.module(ci.module, false)
			if err != nil {
				return nil, err
			}
			rd.mainMod = m
			def := rd.c.spaces[sortCoreModule][ci.module].module
			out.ModuleIndex, out.ModuleOffset, out.Module, out.original = def.index, def.offset, def.bytes, def.bytes
			rd.roles[inst] = roleMain
		}
		opts, err := rd.options(l.lift.opts)
		if err != nil {
			return nil, fmt.Errorf("export %s#%s: %w", l.iface, l.fn, err)
		}
		if want := l.iface + "#" + l.fn; name != want {
			return nil, unsupported("export %s#%s lifts the core export %q, not %q", l.iface, l.fn, name, want)
		}
		if opts.PostReturn != "" && opts.PostReturn != "cabi_post_"+name {
			return nil, unsupported("export %s#%s has the post-return %q, not %q", l.iface, l.fn, opts.PostReturn, "cabi_post_"+name)
		}
		e := Export{Interface: l.iface, Func: l.fn, CoreName: name, Options: opts}
		if x, ok := rd.mainMod.exportNamed(name, externFunc); ok {
			e.Signature, _ = rd.mainMod.funcType(x.idx)
		}
		out.Exports = append(out.Exports, e)
	}

	if err := rd.imports(out); err != nil {
		return nil, err
	}
	if err := rd.explainInstances(out); err != nil {
		return nil, err
	}
	return out, rd.rename(out)
}

// imports resolves every function import of the main module.
func (rd *reducer) imports(out *Reduced) error {
	mainInst := rd.coreInstance(rd.main)
	for _, imp := range rd.mainMod.imports {
		if imp.kind != externFunc {
			return unsupported("the main module imports a %s (%s %s)", imp.kind, imp.module, imp.name)
		}
	}
	for _, imp := range rd.mainMod.funcImports {
		got := Import{Module: imp.module, Name: imp.name, HostModule: imp.module, HostName: imp.name}
		if int(imp.typeIdx) < len(rd.mainMod.types) {
			got.Signature = rd.mainMod.types[imp.typeIdx]
		}
		arg, ok := argNamed(mainInst.args, imp.module)
		if !ok {
			return unsupported("the main module's import %s %s has no instantiation argument", imp.module, imp.name)
		}
		t, err := rd.resolveExport(arg, imp.name)
		if err != nil {
			return fmt.Errorf("main module import %s %s: %w", imp.module, imp.name, err)
		}
		switch {
		case t.lower != nil:
			got.Kind = Lowered
			if got.Interface, got.Func, err = rd.importedFunc(t.lower.fn); err != nil {
				return fmt.Errorf("main module import %s %s: %w", imp.module, imp.name, err)
			}
			if got.Options, err = rd.options(t.lower.opts); err != nil {
				return fmt.Errorf("main module import %s %s: %w", imp.module, imp.name, err)
			}
			if !sameFunction(imp.module, imp.name, got.Interface, got.Func) {
				got.HostModule, got.HostName = got.Interface, got.Func
			}
		case t.drop != nil:
			got.Kind = ResourceDrop
			if got.Interface, got.Func, err = rd.importedResource(t.drop.typ); err != nil {
				return fmt.Errorf("main module import %s %s: %w", imp.module, imp.name, err)
			}
			if !sameFunction(imp.module, imp.name, got.Interface, "[resource-drop]"+got.Func) {
				got.HostModule, got.HostName = got.Interface, "[resource-drop]"+got.Func
			}
		case t.inst == rd.main:
			return unsupported("the main module's import %s %s is bound to its own export %q", imp.module, imp.name, t.name)
		default:
			if imp.module != abi.WASIModule {
				return unsupported("the main module's import %s %s is bound to core module %d's export %q (only %s may come from another module, its adapter)",
					imp.module, imp.name, rd.coreInstance(t.inst).module, t.name, abi.WASIModule)
			}
			if r := rd.roles[t.inst]; r != roleNone && r != roleAdapter {
				return unsupported("the main module's import %s %s is bound to the %s module", imp.module, imp.name, roleNames[r])
			}
			rd.roles[t.inst] = roleAdapter
			adapter := int(rd.coreInstance(t.inst).module)
			if out.Adapter >= 0 && out.Adapter != adapter {
				return unsupported("two %s adapters", abi.WASIModule)
			}
			out.Adapter = adapter
			got.Kind, got.Interface, got.Func = Preview1, abi.WASIModule, t.name
			got.HostModule, got.HostName = abi.WASIModule, t.name
		}
		out.Imports = append(out.Imports, got)
	}
	return nil
}

// sameFunction reports whether the main module's import module.name names
// iface's function fn, allowing the two to differ in the interface's
// version (a main module built against wasi 0.2.10 in a component that
// imports 0.2.12).
func sameFunction(module, name, iface, fn string) bool {
	return name == fn && unversioned(module) == unversioned(iface)
}

// unversioned strips an interface name's "@version".
func unversioned(iface string) string {
	if i := strings.LastIndexByte(iface, '@'); i >= 0 {
		return iface[:i]
	}
	return iface
}

// explainInstances checks that every core instance of the component is one
// the reduction accounts for: the main module, shims, fixups and the
// adapter. Any other instance would be code the reduced module drops.
func (rd *reducer) explainInstances(out *Reduced) error {
	for i, e := range rd.c.spaces[sortCoreInstance] {
		ci := e.coreInst
		if ci == nil || !ci.instantiate {
			continue
		}
		idx := uint32(i)
		switch rd.roles[idx] {
		case roleMain:
			continue
		case roleAdapter, roleShim:
			out.Dropped++
			continue
		case roleFixup:
			out.Dropped++
			if err := rd.fixupStart(idx, out); err != nil {
				return err
			}
			continue
		}
		// An instance no import resolution went through: a shim or a
		// fixup may fill slots the main module does not use, and the
		// adapter may be reached only by other glue. Anything else is
		// code the reduction would drop.
		if ok, err := rd.isFixup(idx); err != nil {
			return err
		} else if ok {
			rd.roles[idx] = roleFixup
			out.Dropped++
			if err := rd.fixupStart(idx, out); err != nil {
				return err
			}
			continue
		}
		if uint32(out.Adapter) == ci.module && out.Adapter >= 0 {
			out.Dropped++
			continue
		}
		if ok, err := rd.isShim(idx); err != nil {
			return err
		} else if ok {
			out.Dropped++
			continue
		}
		return unsupported("core module %d is instantiated and is none of the main module, a shim, a fixup or the %s adapter", ci.module, abi.WASIModule)
	}
	if n := rd.instancesOf(rd.coreInstance(rd.main).module); n != 1 {
		return unsupported("the main module is instantiated %d times", n)
	}
	return nil
}

func (rd *reducer) instancesOf(module uint32) int {
	n := 0
	for _, e := range rd.c.spaces[sortCoreInstance] {
		if e.coreInst != nil && e.coreInst.instantiate && e.coreInst.module == module {
			n++
		}
	}
	return n
}

// fixupStart checks a fixup's start function: none, or the main module's
// export (its _initialize), which becomes Reduced.Initialize.
func (rd *reducer) fixupStart(inst uint32, out *Reduced) error {
	ci := rd.coreInstance(inst)
	m, err := rd.module(ci.module, false)
	if err != nil {
		return err
	}
	if !m.start.set {
		return nil
	}
	if uint64(m.start.idx) >= uint64(len(m.funcImports)) {
		return unsupported("a fixup module's start function is its own code")
	}
	imp := m.funcImports[m.start.idx]
	arg, ok := argNamed(ci.args, imp.module)
	if !ok {
		return unsupported("a fixup module's import %s %s has no instantiation argument", imp.module, imp.name)
	}
	t, err := rd.resolveExport(arg, imp.name)
	if err != nil {
		return err
	}
	if t.lower != nil || t.drop != nil || t.inst != rd.main {
		return unsupported("a fixup module's start function is not an export of the main module")
	}
	if out.Initialize != "" && out.Initialize != t.name {
		return unsupported("the component runs two initializers, %q and %q", out.Initialize, t.name)
	}
	if t.name != abi.Initialize.Name {
		return unsupported("the component initializes the main module with %q, not %q", t.name, abi.Initialize.Name)
	}
	out.Initialize = t.name
	return nil
}

// options turns canon options into the names of the main module's exports
// they refer to. Memory and realloc must be the main module's own, under
// the names Troupe's host uses, and strings UTF-8: then the host's
// functions serve the import as they serve a core module's.
func (rd *reducer) options(o canonOptions) (Options, error) {
	opts := Options{StringEncoding: o.encoding}
	if o.encoding != UTF8 {
		return opts, unsupported("string encoding %s (Troupe's host speaks UTF-8)", o.encoding)
	}
	for _, x := range []struct {
		opt  optIdx
		sort sort
		dst  *string
		what string
		want string
	}{
		{o.memory, sortCoreMemory, &opts.Memory, "memory", abi.Memory},
		{o.realloc, sortCoreFunc, &opts.Realloc, "realloc", abi.Realloc.Name},
		{o.postReturn, sortCoreFunc, &opts.PostReturn, "post-return", ""},
	} {
		if !x.opt.set {
			continue
		}
		inst, name, err := rd.coreExportOf(x.sort, x.opt.idx)
		if err != nil {
			return opts, fmt.Errorf("%s option: %w", x.what, err)
		}
		if inst != rd.main {
			return opts, unsupported("the %s option is core module %d's export %q, not the main module's", x.what, rd.coreInstance(inst).module, name)
		}
		if x.want != "" && name != x.want {
			return opts, unsupported("the %s option is the main module's export %q, not %q", x.what, name, x.want)
		}
		*x.dst = name
	}
	return opts, nil
}

// target is where a core function resolves to.
type target struct {
	lower *canonDef // canon lower
	drop  *canonDef // canon resource.drop
	// Otherwise, export name of the instantiated core instance inst.
	inst uint32
	name string
}

// resolveExport follows core instance inst's function export name through
// aliases, inline-export instances and wit-component's shim/fixup
// indirection to a canon definition, or to an export of an instantiated
// module other than a shim.
func (rd *reducer) resolveExport(inst uint32, name string) (target, error) {
	for step := 0; step < maxSteps; step++ {
		ci := rd.coreInstance(inst)
		if !ci.instantiate {
			idx, ok := coreExportNamed(ci.exports, name, sortCoreFunc)
			if !ok {
				return target{}, &MalformedError{Msg: fmt.Sprintf("core instance %d exports no function %q", inst, name)}
			}
			e := rd.c.spaces[sortCoreFunc][idx]
			switch e.origin {
			case originDefined:
				return canonTarget(e.canon)
			case originAliasCoreExport:
				inst, name = e.inst, e.name
				continue
			default:
				return target{}, unsupported("a core function from an %s alias", originName(e.origin))
			}
		}
		if inst == rd.main {
			return target{inst: inst, name: name}, nil
		}
		isShim, err := rd.isShim(inst)
		if err != nil {
			return target{}, err
		}
		if !isShim {
			return target{inst: inst, name: name}, nil
		}
		if inst, name, err = rd.throughShim(inst, name); err != nil {
			return target{}, err
		}
	}
	return target{}, unsupported("a core function bound through more than %d indirections", maxSteps)
}

func canonTarget(d *canonDef) (target, error) {
	switch d.op {
	case canonLower:
		return target{lower: d}, nil
	case canonResourceDrop:
		return target{drop: d}, nil
	case canonResourceNew:
		return target{}, unsupported("canon resource.new (a component that exports resources)")
	case canonResourceRep:
		return target{}, unsupported("canon resource.rep (a component that exports resources)")
	}
	return target{}, unsupported("a core function from canon op %d", d.op)
}

func originName(o origin) string {
	return [...]string{"own definition", "import", "export", "export", "core export", "outer"}[o]
}

// coreExportOf resolves a core function or memory to an export of an
// instantiated core instance (following inline-export instances).
func (rd *reducer) coreExportOf(s sort, idx uint32) (uint32, string, error) {
	for step := 0; step < maxSteps; step++ {
		e := rd.c.spaces[s][idx]
		if e.origin != originAliasCoreExport {
			return 0, "", unsupported("a %s that is not a core module's export", s)
		}
		ci := rd.coreInstance(e.inst)
		if ci.instantiate {
			return e.inst, e.name, nil
		}
		next, ok := coreExportNamed(ci.exports, e.name, s)
		if !ok {
			return 0, "", &MalformedError{Msg: fmt.Sprintf("core instance %d exports no %s %q", e.inst, s, e.name)}
		}
		idx = next
	}
	return 0, "", unsupported("a %s bound through more than %d indirections", s, maxSteps)
}

func (rd *reducer) coreInstance(idx uint32) *coreInstance {
	return rd.c.spaces[sortCoreInstance][idx].coreInst
}

func (rd *reducer) module(idx uint32, bodies bool) (*coreModule, error) {
	if m, ok := rd.modules[idx]; ok && (!bodies || m.bodies != nil || len(m.funcTypes) == 0) {
		return m, nil
	}
	def := rd.c.spaces[sortCoreModule][idx].module
	if def == nil {
		return nil, unsupported("core module %d is imported or aliased, not embedded", idx)
	}
	m, err := parseCoreModule(def, bodies)
	if err != nil {
		return nil, err
	}
	rd.modules[idx] = m
	return m, nil
}

func coreExportNamed(exports []coreExport, name string, s sort) (uint32, bool) {
	for _, x := range exports {
		if x.name == name && x.sort == s {
			return x.idx, true
		}
	}
	return 0, false
}

func argNamed(args []coreArg, name string) (uint32, bool) {
	for _, a := range args {
		if a.name == name {
			return a.inst, true
		}
	}
	return 0, false
}

// importedFunc names the imported interface function a component function
// is: interface name and function name.
func (rd *reducer) importedFunc(fn uint32) (string, string, error) {
	e, err := rd.follow(sortFunc, fn)
	if err != nil {
		return "", "", err
	}
	switch e.origin {
	case originAliasExport:
		iface, err := rd.importedInstance(e.inst)
		return iface, e.name, err
	case originImport:
		return "", "", unsupported("lowers the bare imported function %q (an actor's world imports interfaces)", e.name)
	}
	return "", "", unsupported("lowers a function the component defines itself (a composition of components)")
}

// importedResource names the imported interface resource type typ is.
func (rd *reducer) importedResource(typ uint32) (string, string, error) {
	e, err := rd.follow(sortType, typ)
	if err != nil {
		return "", "", err
	}
	if e.origin != originAliasExport {
		return "", "", unsupported("drops a resource the component defines itself")
	}
	iface, err := rd.importedInstance(e.inst)
	return iface, e.name, err
}

// importedInstance names the component import an instance is.
func (rd *reducer) importedInstance(idx uint32) (string, error) {
	e, err := rd.follow(sortInstance, idx)
	if err != nil {
		return "", err
	}
	if e.origin != originImport {
		return "", unsupported("uses an instance the component creates itself (a composition of components)")
	}
	return e.name, nil
}

// follow resolves export aliases (an export re-indexes what it exports).
func (rd *reducer) follow(s sort, idx uint32) (entry, error) {
	for step := 0; step < maxSteps; step++ {
		e := rd.c.spaces[s][idx]
		if e.origin != originExport {
			return e, nil
		}
		idx = e.ref
	}
	return entry{}, unsupported("a %s exported through more than %d re-exports", s, maxSteps)
}

// namedFunc is a function an instance exports: its name and its index in
// the outer component's function space.
type namedFunc struct {
	name string
	idx  uint32
}

// instanceFuncs lists the functions an exported instance has: an
// inline-export instance's, or those a nested component (wit-component's
// shim component) re-exports from its imports.
func (rd *reducer) instanceFuncs(idx uint32) ([]namedFunc, error) {
	e, err := rd.follow(sortInstance, idx)
	if err != nil {
		return nil, err
	}
	in := e.inst2
	if e.origin != originDefined || in == nil {
		return nil, unsupported("exports an instance it does not define (an import or an alias)")
	}
	var out []namedFunc
	if !in.instantiate {
		for _, x := range in.exports {
			switch x.sort {
			case sortFunc:
				out = append(out, namedFunc{x.name, x.idx})
			case sortType:
			default:
				return nil, unsupported("an exported instance exports a %s (%q)", x.sort, x.name)
			}
		}
		return out, nil
	}
	ce, err := rd.follow(sortComponent, in.component)
	if err != nil {
		return nil, err
	}
	nested := ce.comp
	if ce.origin != originDefined || nested == nil {
		return nil, unsupported("instantiates a component it does not embed")
	}
	for _, mod := range nested.spaces[sortCoreModule] {
		if mod.module != nil {
			return nil, unsupported("a nested component with core modules of its own")
		}
	}
	for _, x := range nested.exports {
		switch x.sort {
		case sortFunc:
		case sortType:
			continue
		default:
			return nil, unsupported("a nested component exports a %s (%q)", x.sort, x.name)
		}
		f := nested.spaces[sortFunc][x.idx]
		for step := 0; f.origin == originExport && step < maxSteps; step++ {
			f = nested.spaces[sortFunc][f.ref]
		}
		if f.origin != originImport {
			return nil, unsupported("a nested component exports a function %q it does not import", x.name)
		}
		var arg *sortIdx
		for i := range in.args {
			if in.args[i].name == f.name {
				arg = &in.args[i]
			}
		}
		if arg == nil || arg.sort != sortFunc {
			return nil, unsupported("a nested component's import %q is not given a function", f.name)
		}
		out = append(out, namedFunc{x.name, arg.idx})
	}
	return out, nil
}

// liftOf returns the canon lift that defines function idx.
func (rd *reducer) liftOf(idx uint32) (*canonDef, error) {
	e, err := rd.follow(sortFunc, idx)
	if err != nil {
		return nil, err
	}
	if e.origin != originDefined || e.canon == nil || e.canon.op != canonLift {
		return nil, unsupported("exports a function that is not a canon lift")
	}
	return e.canon, nil
}
