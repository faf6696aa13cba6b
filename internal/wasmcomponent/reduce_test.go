package wasmcomponent_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// runtimeOptions are the canon options of a runtime function that needs
// memory: the main module's memory and cabi_realloc, UTF-8. The runtime
// handler serves a core module's imports with exactly these.
var runtimeOptions = wasmcomponent.Options{Memory: abi.Memory, Realloc: abi.Realloc.Name}

// initExport is init lifted as every toolchain lifts it.
var initExport = wasmcomponent.Export{Interface: "theater:simple/actor", Func: "init", CoreName: abi.Init.Name,
	Signature: abi.Init.Signature,
	Options:   wasmcomponent.Options{Memory: abi.Memory, Realloc: abi.Realloc.Name, PostReturn: abi.InitPost.Name}}

// lowered is a runtime import as the reduction describes it.
func lowered(name string, opts wasmcomponent.Options) wasmcomponent.Import {
	f, ok := abi.LookupImport(abi.RuntimeModule, name)
	if !ok {
		panic("no runtime function " + name)
	}
	return wasmcomponent.Import{Module: abi.RuntimeModule, Name: name, Signature: f.Signature,
		Kind: wasmcomponent.Lowered, Interface: abi.RuntimeModule, Func: name, Options: opts,
		HostModule: abi.RuntimeModule, HostName: name}
}

// TestReduceCommittedComponents reduces the components of
// testdata/components, each made by wit-component from a core module in the
// tree, and checks the reduction against what that module imports and
// exports.
func TestReduceCommittedComponents(t *testing.T) {
	tests := map[string]struct {
		core       []byte // the module the component wraps
		imports    []wasmcomponent.Import
		exports    []wasmcomponent.Export
		initialize string
		adapter    bool
		renamed    bool
		dropped    int
	}{
		"wat-actor": {
			core: testutil.TestActor(t, "wat-actor"),
			imports: []wasmcomponent.Import{
				lowered("get-actor-id", runtimeOptions), lowered("get-actor-name", runtimeOptions),
				// No string or list: no options at all.
				lowered("get-current-time", wasmcomponent.Options{}),
				lowered("get-env", runtimeOptions), lowered("log", runtimeOptions),
				lowered("record-metric", runtimeOptions), lowered("record-event", runtimeOptions),
				lowered("get-theater-version", runtimeOptions), lowered("get-system-info", runtimeOptions),
				lowered("shutdown", runtimeOptions),
			},
			exports:    []wasmcomponent.Export{initExport},
			initialize: "_initialize",
			dropped:    2, // shim, fixup
		},
		"tick": {
			core:    readFile(t, "../actorhost/testdata/tick.wasm"),
			imports: []wasmcomponent.Import{lowered("log", runtimeOptions), lowered("shutdown", runtimeOptions)},
			exports: []wasmcomponent.Export{
				{Interface: "theater:simple/actor", Func: "init", CoreName: abi.Init.Name, Signature: abi.Init.Signature,
					Options: runtimeOptions},
				{Interface: "troupe:actor/ticker", Func: "tick", CoreName: abi.Tick.Name, Signature: abi.Tick.Signature,
					Options: wasmcomponent.Options{Memory: abi.Memory, Realloc: abi.Realloc.Name, PostReturn: abi.TickPost.Name}},
			},
			dropped: 2,
		},
		"adapted": {
			core: readFile(t, "../../testdata/components/src/adapted.wasm"),
			imports: []wasmcomponent.Import{
				{Module: abi.WASIModule, Name: "fd_write", Signature: fdWrite, Kind: wasmcomponent.Preview1,
					Interface: abi.WASIModule, Func: "fd_write", HostModule: abi.WASIModule, HostName: "fd_write"},
				// The second import of the same function, renamed by
				// wit-component and bound back to fd_write.
				{Module: abi.WASIModule, Name: "fd_write [v2]", Signature: fdWrite, Kind: wasmcomponent.Preview1,
					Interface: abi.WASIModule, Func: "fd_write", HostModule: abi.WASIModule, HostName: "fd_write"},
				lowered("log", runtimeOptions),
			},
			// No cabi_post_: no post-return.
			exports: []wasmcomponent.Export{{Interface: "theater:simple/actor", Func: "init", CoreName: abi.Init.Name,
				Signature: abi.Init.Signature, Options: runtimeOptions}},
			initialize: "_initialize",
			adapter:    true,
			renamed:    true,
			dropped:    3, // adapter, shim, fixup
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			comp := testutil.TestComponent(t, name)
			if !wasmcomponent.IsComponent(comp) || wasmcomponent.IsCoreModule(comp) {
				t.Fatal("the committed component does not have a component's header")
			}
			r, err := wasmcomponent.Reduce(comp)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(r.Imports, tc.imports, importEqual) {
				t.Errorf("imports:\n%s\nwant:\n%s", importList(r.Imports), importList(tc.imports))
			}
			if !slices.EqualFunc(r.Exports, tc.exports, exportEqual) {
				t.Errorf("exports:\n%+v\nwant:\n%+v", r.Exports, tc.exports)
			}
			if r.Initialize != tc.initialize {
				t.Errorf("Initialize = %q, want %q", r.Initialize, tc.initialize)
			}
			if (r.Adapter >= 0) != tc.adapter || r.Renamed != tc.renamed || r.Dropped != tc.dropped {
				t.Errorf("Adapter %d, Renamed %v, Dropped %d; want an adapter: %v, renamed: %v, dropped: %d",
					r.Adapter, r.Renamed, r.Dropped, tc.adapter, tc.renamed, tc.dropped)
			}
			// The main module is the wrapped module, byte for byte, but
			// for custom sections (wit-component strips its component-type
			// section and adds producers) and the renamed imports.
			if !tc.renamed {
				if !bytes.Equal(r.Module, comp[r.ModuleOffset:r.ModuleOffset+len(r.Module)]) {
					t.Error("Module is not the component's own bytes")
				}
			}
			// The adapted module imports fd_write twice: the rename gives
			// back exactly its import section.
			want := stripCustom(t, tc.core)
			if tc.renamed && !bytes.Contains(comp, []byte("fd_write [v2]")) {
				t.Error("the component does not import fd_write [v2]")
			}
			if got := stripCustom(t, r.Module); !bytes.Equal(got, want) {
				t.Errorf("the reduced module (%d bytes without custom sections) is not the wrapped module (%d)", len(got), len(want))
			}
		})
	}
}

var fdWrite = abi.Signature{Params: []byte{abi.I32, abi.I32, abi.I32, abi.I32}, Results: []byte{abi.I32}}

func importEqual(a, b wasmcomponent.Import) bool {
	return a.Module == b.Module && a.Name == b.Name && a.Signature.Equal(b.Signature) && a.Kind == b.Kind &&
		a.Interface == b.Interface && a.Func == b.Func && a.Options == b.Options &&
		a.HostModule == b.HostModule && a.HostName == b.HostName
}

func exportEqual(a, b wasmcomponent.Export) bool {
	return a.Interface == b.Interface && a.Func == b.Func && a.CoreName == b.CoreName &&
		a.Signature.Equal(b.Signature) && a.Options == b.Options
}

func importList(imps []wasmcomponent.Import) string {
	var b strings.Builder
	for _, i := range imps {
		b.WriteString("  " + i.String() + "\n")
	}
	return b.String()
}

func TestHeaders(t *testing.T) {
	comp := testutil.TestComponent(t, "wat-actor")
	core := testutil.TestActor(t, "wat-actor")
	tests := map[string]struct {
		b                          []byte
		component, module, layered bool
	}{
		"component":      {b: comp, component: true, layered: true},
		"core module":    {b: core, module: true},
		"older draft":    {b: []byte("\x00asm\x0a\x00\x01\x00"), layered: true},
		"short":          {b: comp[:7]},
		"empty":          {b: nil},
		"not wasm":       {b: []byte("\x7fELF\x02\x01\x01\x00")},
		"core version 2": {b: []byte("\x00asm\x02\x00\x00\x00")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := wasmcomponent.IsComponent(tc.b); got != tc.component {
				t.Errorf("IsComponent = %v", got)
			}
			if got := wasmcomponent.IsCoreModule(tc.b); got != tc.module {
				t.Errorf("IsCoreModule = %v", got)
			}
			if got := wasmcomponent.IsComponentLayer(tc.b); got != tc.layered {
				t.Errorf("IsComponentLayer = %v", got)
			}
		})
	}
	if _, err := wasmcomponent.Reduce([]byte("\x00asm\x0a\x00\x01\x00")); !errors.Is(err, wasmcomponent.ErrUnsupported) ||
		!strings.Contains(err.Error(), "version 0x0a") {
		t.Errorf("reducing a component of an older draft: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stripCustom returns the core module b without its custom sections.
func stripCustom(t *testing.T, b []byte) []byte {
	t.Helper()
	out := bytes.Clone(b[:8])
	for p := 8; p < len(b); {
		id := b[p]
		size, n := binary.Uvarint(b[p+1:])
		if n <= 0 || p+1+n+int(size) > len(b) {
			t.Fatalf("bad section at %d", p)
		}
		end := p + 1 + n + int(size)
		if id != 0 {
			out = append(out, b[p:end]...)
		}
		p = end
	}
	return out
}
