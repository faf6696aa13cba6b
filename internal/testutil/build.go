package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ModulePath is the module RepoRoot looks for.
const ModulePath = "github.com/troupe-dev/troupe"

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// RepoRoot returns the absolute path of the repository: the nearest directory
// above the working directory (a test's package directory) whose go.mod
// declares ModulePath.
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() { root, rootErr = findRepoRoot() })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return root
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, ModulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod declaring " + ModulePath + " above the working directory")
		}
		dir = parent
	}
}

func declaresModule(gomod []byte, path string) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == path {
			return true
		}
	}
	return false
}

// build is one package's wasm build, done at most once per test binary.
type build struct {
	once sync.Once
	wasm []byte
	err  error
}

var builds sync.Map // package dir relative to the repository root -> *build

// BuildExample builds examples/<name> as a WASI reactor and returns the
// module's bytes. See BuildActor.
func BuildExample(t testing.TB, name string) []byte {
	t.Helper()
	return BuildActor(t, filepath.Join("examples", name))
}

// ExampleWasm returns what examples/<name> builds to: a Go example built
// as BuildExample builds it, or a JavaScript one (actor.js) as
// hack/components.sh builds it (BuiltComponent: the test skips without
// $TROUPE_COMPONENTS).
func ExampleWasm(t testing.TB, name string) []byte {
	t.Helper()
	if IsJSExample(t, name) {
		return BuiltComponent(t, name)
	}
	return BuildExample(t, name)
}

// IsJSExample reports whether examples/<name> is a JavaScript actor.
func IsJSExample(t testing.TB, name string) bool {
	_, err := os.Stat(filepath.Join(RepoRoot(t), "examples", name, "actor.js"))
	return err == nil
}

// BuildActor builds the Go actor in dir (relative to the repository root) with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared and returns the
// module's bytes. Each package is built once per test binary; Go's build cache
// makes later test binaries fast too. The result is a copy the caller may
// modify.
func BuildActor(t testing.TB, dir string) []byte {
	t.Helper()
	repo := RepoRoot(t)
	v, _ := builds.LoadOrStore(filepath.Clean(dir), &build{})
	b := v.(*build)
	b.once.Do(func() {
		out := filepath.Join(t.TempDir(), "actor.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+filepath.ToSlash(filepath.Clean(dir)))
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if output, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building the actor in %s: %w\n%s", dir, err, output)
			return
		}
		if b.wasm, b.err = os.ReadFile(out); b.err != nil {
			b.err = fmt.Errorf("reading the actor built from %s: %w", dir, b.err)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return bytes.Clone(b.wasm)
}

// TestActor returns the committed module of a hand-written test actor,
// testdata/actors/<name>/actor.wasm at the repository root (generated from the
// actor.wat beside it by `make wat`).
func TestActor(t testing.TB, name string) []byte {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "testdata", "actors", name, "actor.wasm")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading test actor %s: %v", name, err)
	}
	return data
}
