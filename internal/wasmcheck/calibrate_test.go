package wasmcheck_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/wasmcheck"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// margin is how far below every bound of Default real modules must stay.
const margin = 10

// exempt are the bounds the format sets, not a toolchain: WebAssembly 2.0
// has one memory.
var exempt = map[string]bool{"Memories": true}

// TestDefaultIsTenfoldTheToolchains holds the calibration of Default: every
// figure of every Go example (built as the Makefile builds it) is at most a
// tenth of its bound. TROUPE_CALIBRATE adds modules to measure (paths,
// separated by the OS's list separator), e.g. the main module of a
// componentize-js component:
//
//	TROUPE_CALIBRATE=/tmp/js-main.wasm go test ./internal/wasmcheck -run Tenfold -v
//
// The figures it logs are those in limits.go and docs/performance.md.
func TestDefaultIsTenfoldTheToolchains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	modules := map[string][]byte{}
	examples, err := os.ReadDir(filepath.Join(testutil.RepoRoot(t), "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples {
		switch {
		case !e.IsDir():
		case testutil.IsJSExample(t, e.Name()):
			// A componentize-js component: its main module is what the
			// engine checks and compiles. Measured when the components
			// are built (make test builds them).
			if os.Getenv(testutil.ComponentsEnv) == "" {
				continue
			}
			r, err := wasmcomponent.Reduce(testutil.BuiltComponent(t, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			modules[e.Name()+" (main module)"] = r.Module
		default:
			modules[e.Name()] = testutil.BuildExample(t, e.Name())
		}
	}
	if len(modules) < 4 {
		t.Fatalf("found %d examples", len(modules))
	}
	for _, p := range filepath.SplitList(os.Getenv("TROUPE_CALIBRATE")) {
		wasm, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		modules[filepath.Base(p)] = wasm
	}

	most := map[string]uint64{} // per bound, the largest figure of any module
	who := map[string]string{}
	for name, wasm := range modules {
		s, err := wasmcheck.Check(wasm, wasmcheck.Unlimited)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for bound, v := range figures(s) {
			if v >= most[bound] {
				most[bound], who[bound] = v, name
			}
		}
		if _, err := wasmcheck.Check(wasm, wasmcheck.Default); err != nil {
			t.Errorf("%s: Default refuses it: %v", name, err)
		}
	}
	lim := reflect.ValueOf(wasmcheck.Default)
	var table strings.Builder
	for i := range lim.NumField() {
		bound := lim.Type().Field(i).Name
		got, measured := most[bound]
		if !measured {
			continue
		}
		bnd := lim.Field(i).Convert(reflect.TypeFor[uint64]()).Uint()
		fmt.Fprintf(&table, "| %s | %d (%s) | %d | %.0f× |\n", bound, got, who[bound], bnd, float64(bnd)/float64(max(got, 1)))
		if !exempt[bound] && got*margin > bnd {
			t.Errorf("%s: %s has %d, more than a %dth of the bound %d", bound, who[bound], got, margin, bnd)
		}
	}
	t.Logf("bound | largest figure (module) | Default | ratio\n%s", table.String())
}

// figures are a Stats' values by the name of the Limits field that bounds
// each (a per-function figure's largest value).
func figures(s *wasmcheck.Stats) map[string]uint64 {
	out := map[string]uint64{}
	v := reflect.ValueOf(*s)
	for i := range v.NumField() {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.Struct: // Most
			out[name] = f.FieldByName("Value").Uint()
		case reflect.Int:
			out[name] = uint64(f.Int())
		default:
			out[name] = f.Uint()
		}
	}
	return out
}
