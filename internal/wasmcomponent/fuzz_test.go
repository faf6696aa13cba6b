package wasmcomponent_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// FuzzReduce feeds Reduce hostile bytes: it must answer every input with a
// reduction, a *MalformedError or an unsupported shape, never a panic, and
// within the limits it was given. The seeds are the committed components
// (testdata/fuzz/FuzzReduce holds cut and flipped ones too), so the fuzzer
// starts from the layouts the toolchains emit.
func FuzzReduce(f *testing.F) {
	for _, name := range []string{"wat-actor", "tick", "adapted"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "components", name+".wasm"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	limits := wasmcomponent.Limits{MaxBytes: 1 << 20, MaxDefinitions: 10_000, MaxNesting: 8}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := wasmcomponent.ReduceWithLimits(b, limits)
		if err != nil {
			var malformed *wasmcomponent.MalformedError
			if !errors.As(err, &malformed) && !errors.Is(err, wasmcomponent.ErrUnsupported) {
				t.Fatalf("an error that is neither malformed nor unsupported: %v", err)
			}
			if errors.Is(err, wasmcomponent.ErrUnsupported) && !hasPrefix(err.Error(), "unsupported component shape: ") {
				t.Fatalf("an unsupported shape that does not say so first: %v", err)
			}
			return
		}
		if !wasmcomponent.IsCoreModule(r.Module) {
			t.Fatalf("reduced to %d bytes that are not a core module", len(r.Module))
		}
		if len(r.Exports) == 0 {
			t.Fatal("reduced with no export")
		}
		for _, imp := range r.Imports {
			if imp.Kind == 0 || imp.HostModule == "" {
				t.Fatalf("an import the reduction did not resolve: %s", imp)
			}
		}
	})
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
