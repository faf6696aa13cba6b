package wasmcheck_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// wazeroModules are the .wasm files of wazero's own tests, in the module
// cache: the WebAssembly 1.0 and 2.0 spec test suites (every instruction,
// SIMD included, and the malformed modules the spec lists), wazero's fuzz
// regressions, and modules from real toolchains (TinyGo, Zig, Emscripten).
func wazeroModules(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Skipf("locating wazero's sources: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	var files []string
	for _, pattern := range []string{
		"internal/integration_test/spectest/v1/testdata/*.wasm",
		"internal/integration_test/spectest/v2/testdata/*.wasm",
		"internal/integration_test/fuzzcases/testdata/*.wasm",
		"internal/testing/dwarftestdata/testdata/*/*.wasm",
		"imports/emscripten/testdata/*.wasm",
		"imports/wasi_snapshot_preview1/testdata/*.wasm",
	} {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		files = append(files, m...)
	}
	if len(files) < 1000 {
		t.Skipf("found only %d of wazero's test modules in %s", len(files), dir)
	}
	return files
}

// TestAgreesWithWazero: every module wazero compiles with the engine's
// (WebAssembly 2.0) features passes Check's reading: it may exceed a bound,
// never be "malformed". (These are wazero's own test inputs: its decoder
// survives them all.)
func TestAgreesWithWazero(t *testing.T) {
	if testing.Short() {
		t.Skip("reads thousands of modules")
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	accepted, refused := 0, 0
	for _, f := range wazeroModules(t) {
		wasm, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, cerr := wasmcheck.Check(wasm, wasmcheck.Default)
		var ce *wasmcheck.Error
		if cerr != nil && !errors.As(cerr, &ce) {
			t.Fatalf("%s: Check returned %T %v", f, cerr, cerr)
		}
		m, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			refused++
			continue
		}
		_ = m.Close(ctx)
		accepted++
		if cerr != nil && ce.Limit == "" {
			t.Errorf("%s: wazero compiles it, Check says %v", filepath.Base(f), cerr)
		}
	}
	t.Logf("%d modules wazero compiles, %d it refuses", accepted, refused)
}
