package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// ComponentsEnv names the directory of the large test components that
// hack/components.sh builds (and prints): the Go examples wrapped with the
// preview1 adapter and the componentize-js actors. They are megabytes, so
// they are built and cached rather than committed.
const ComponentsEnv = "TROUPE_COMPONENTS"

// TestComponent returns a small committed component,
// testdata/components/<name>.wasm at the repository root (rebuilt by
// `hack/components.sh --testdata`).
func TestComponent(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), "testdata", "components", name+".wasm"))
	if err != nil {
		t.Fatalf("reading test component %s: %v", name, err)
	}
	return data
}

// BuiltComponent returns a component hack/components.sh built
// (go-hello, go-feature-flags, js-hello, js-hello-pure), and skips the test,
// saying how to build them, when $TROUPE_COMPONENTS is unset: building
// needs node, npm and a few minutes the first time.
func BuiltComponent(t testing.TB, name string) []byte {
	t.Helper()
	dir := os.Getenv(ComponentsEnv)
	if dir == "" {
		t.Skipf("%s is not set: run `export %s=$(hack/components.sh)` to build the Go and JavaScript components (needs node and npm)", ComponentsEnv, ComponentsEnv)
	}
	data, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
	if err != nil {
		t.Fatalf("reading built component %s from $%s: %v (rerun hack/components.sh)", name, ComponentsEnv, err)
	}
	return data
}
