package testutil

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Module and export names of the guest ABI (wit/theater-simple.wit, and
// the optional wit/troupe-ticker.wit).
const (
	RuntimeModule  = "theater:simple/runtime"
	InitExport     = "theater:simple/actor#init"
	PostInitExport = "cabi_post_theater:simple/actor#init"
	ReallocExport  = "cabi_realloc"
	InitializeFunc = "_initialize"
	MemoryExport   = "memory"
	WASIModule     = "wasi_snapshot_preview1"
	// TickExport and PostTickExport are the optional periodic entry point
	// of a ticking actor (troupe:actor/ticker) and its post-return.
	TickExport     = "troupe:actor/ticker#tick"
	PostTickExport = "cabi_post_troupe:actor/ticker#tick"
)

// FuncType is a core wasm function signature.
type FuncType struct {
	Params  []api.ValueType
	Results []api.ValueType
}

func (f FuncType) String() string {
	return fmt.Sprintf("(%s) -> (%s)", valueTypes(f.Params), valueTypes(f.Results))
}

func valueTypes(vs []api.ValueType) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += " "
		}
		s += api.ValueTypeName(v)
	}
	return s
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
	f64 = api.ValueTypeF64
)

// RuntimeImports is the core signature of every function of
// theater:simple/runtime, as the canonical ABI lowers it: strings and lists
// are (ptr, len); results wider than one core value go to a return area whose
// address is the last parameter.
var RuntimeImports = map[string]FuncType{
	"get-actor-id":        {Params: []api.ValueType{i32}},                     // retptr: string
	"get-actor-name":      {Params: []api.ValueType{i32}},                     // retptr: string
	"get-current-time":    {Results: []api.ValueType{i64}},                    // u64
	"get-env":             {Params: []api.ValueType{i32, i32, i32}},           // name, retptr: option<string>
	"log":                 {Params: []api.ValueType{i32, i32, i32, i32, i32}}, // level, message, retptr: result<_, string>
	"record-metric":       {Params: []api.ValueType{i32, i32, f64, i32}},      // name, value, retptr
	"record-event":        {Params: []api.ValueType{i32, i32, i32, i32, i32}}, // type, data, retptr
	"get-theater-version": {Params: []api.ValueType{i32}},                     // retptr: string
	"get-system-info":     {Params: []api.ValueType{i32}},                     // retptr: system-info (56 bytes, align 8)
	"shutdown":            {Params: []api.ValueType{i32, i32, i32, i32}},      // option<list<u8>>, retptr
}

// ActorExports is the core signature of every function an actor may export;
// Required says which must be there.
var ActorExports = map[string]struct {
	Type     FuncType
	Required bool
}{
	// (state option<list<u8>>: is-some, ptr, len; actor id: ptr, len) -> pointer to the result area
	InitExport:     {FuncType{Params: []api.ValueType{i32, i32, i32, i32, i32}, Results: []api.ValueType{i32}}, true},
	ReallocExport:  {FuncType{Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}}, true},
	PostInitExport: {FuncType{Params: []api.ValueType{i32}}, false},
	InitializeFunc: {FuncType{}, false},
	// (state option<list<u8>>: is-some, ptr, len; now-ms u64) -> pointer to a result area laid out like init's
	TickExport:     {FuncType{Params: []api.ValueType{i32, i32, i32, i64}, Results: []api.ValueType{i32}}, false},
	PostTickExport: {FuncType{Params: []api.ValueType{i32}}, false},
}

// CheckGuestABI reports every way a compiled module departs from the guest
// ABI: an import from theater:simple/runtime that does not exist or has another
// signature, an import from a module other than the runtime and WASI, a
// missing or mistyped export, no exported memory.
func CheckGuestABI(m wazero.CompiledModule) error {
	var errs []error
	for _, f := range sortedDefs(m.ImportedFunctions()) {
		module, name, _ := f.Import()
		switch module {
		case RuntimeModule:
			want, ok := RuntimeImports[name]
			if !ok {
				errs = append(errs, fmt.Errorf("imports %s.%s, which the runtime does not provide", module, name))
				continue
			}
			if got := typeOf(f); !sameType(got, want) {
				errs = append(errs, fmt.Errorf("imports %s.%s as %s, want %s", module, name, got, want))
			}
		case WASIModule:
		default:
			errs = append(errs, fmt.Errorf("imports %s.%s from an unknown module", module, name))
		}
	}
	exports := m.ExportedFunctions()
	for _, name := range sortedKeys(ActorExports) {
		want := ActorExports[name]
		f, ok := exports[name]
		if !ok {
			if want.Required {
				errs = append(errs, fmt.Errorf("does not export %s", name))
			}
			continue
		}
		if got := typeOf(f); !sameType(got, want.Type) {
			errs = append(errs, fmt.Errorf("exports %s as %s, want %s", name, got, want.Type))
		}
	}
	if _, ok := m.ExportedMemories()[MemoryExport]; !ok {
		errs = append(errs, errors.New("does not export its memory as \"memory\""))
	}
	return errors.Join(errs...)
}

// Compile compiles wasm for inspection (imports, exports, memory) with
// wazero's interpreter, which skips code generation, and closes it when the
// test ends.
func Compile(t testing.TB, wasm []byte) wazero.CompiledModule {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	t.Cleanup(func() { r.Close(ctx) })
	m, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("compiling the module: %v", err)
	}
	return m
}

// RuntimeImportNames returns the names of the theater:simple/runtime functions
// a module imports, sorted.
func RuntimeImportNames(m wazero.CompiledModule) []string {
	var names []string
	for _, f := range m.ImportedFunctions() {
		if module, name, _ := f.Import(); module == RuntimeModule {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func typeOf(f api.FunctionDefinition) FuncType {
	return FuncType{Params: f.ParamTypes(), Results: f.ResultTypes()}
}

func sameType(a, b FuncType) bool {
	return slices.Equal(a.Params, b.Params) && slices.Equal(a.Results, b.Results)
}

func sortedDefs(defs []api.FunctionDefinition) []api.FunctionDefinition {
	out := slices.Clone(defs)
	sort.Slice(out, func(i, j int) bool {
		mi, ni, _ := out[i].Import()
		mj, nj, _ := out[j].Import()
		return mi+"."+ni < mj+"."+nj
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
