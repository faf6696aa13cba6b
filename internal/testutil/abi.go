package testutil

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// CheckGuestABI reports every way a compiled module departs from the guest
// ABI (the table of internal/abi): an import of the runtime that does not
// exist or has another signature, an import from a module other than the
// runtime's and WASI, a missing or mistyped export, no exported memory.
func CheckGuestABI(m wazero.CompiledModule) error {
	var errs []error
	for _, f := range sortedDefs(m.ImportedFunctions()) {
		module, name, _ := f.Import()
		switch want, ok := abi.LookupImport(module, name); {
		case ok:
			if got := abi.SignatureOf(f); !got.Equal(want.Signature) {
				errs = append(errs, fmt.Errorf("imports %s.%s as %s, want %s", module, name, got, want.Signature))
			}
		case module == abi.WASIModule:
		case slices.Contains(abi.ImportModules(), module):
			errs = append(errs, fmt.Errorf("imports %s.%s, which the runtime does not provide", module, name))
		default:
			errs = append(errs, fmt.Errorf("imports %s.%s from an unknown module", module, name))
		}
	}
	exports := m.ExportedFunctions()
	for _, want := range abi.Exports {
		f, ok := exports[want.Name]
		if !ok {
			if want.Required {
				errs = append(errs, fmt.Errorf("does not export %s", want.Name))
			}
			continue
		}
		if got := abi.SignatureOf(f); !got.Equal(want.Signature) {
			errs = append(errs, fmt.Errorf("exports %s as %s, want %s", want.Name, got, want.Signature))
		}
	}
	if _, ok := m.ExportedMemories()[abi.Memory]; !ok {
		errs = append(errs, errors.New("does not export its memory as \""+abi.Memory+"\""))
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
		if module, name, _ := f.Import(); module == abi.RuntimeModule {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// RuntimeFuncNames returns the names of every theater:simple/runtime
// function of the ABI table, sorted: what a guest that calls them all
// imports.
func RuntimeFuncNames() []string {
	var names []string
	for _, f := range abi.ImportsOf(abi.RuntimeModule) {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

func sortedDefs(defs []api.FunctionDefinition) []api.FunctionDefinition {
	out := slices.Clone(defs)
	slices.SortFunc(out, func(a, b api.FunctionDefinition) int {
		ma, na, _ := a.Import()
		mb, nb, _ := b.Import()
		return strings.Compare(ma+"."+na, mb+"."+nb)
	})
	return out
}
