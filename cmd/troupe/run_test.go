package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// testModule is a hand-written test actor of the engine's test suite.
func testModule(name string) string {
	return filepath.Join("..", "..", "internal", "actorhost", "testdata", name+".wasm")
}

var (
	headRE   = regexp.MustCompile(`(?m)^head +([0-9a-f]{64})$`)
	lengthRE = regexp.MustCompile(`(?m)^length +(\d+)$`)
	actorRE  = regexp.MustCompile(`(?m)^actor +\S+ (\S+)$`)
)

func chainEvents(t *testing.T, dir string) []chain.Event {
	t.Helper()
	var evs []chain.Event
	if err := chain.ReadFile(filepath.Join(dir, chain.FileName), func(ev chain.Event) error {
		ev.Data = append([]byte(nil), ev.Data...)
		evs = append(evs, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

// lastSavedState is the state last saved in the actor directory dir: the
// slot saved for the latest event.
func lastSavedState(t *testing.T, dir string) []byte {
	t.Helper()
	slots, err := actordir.ReadStateSlots(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var last *actordir.SavedState
	for _, s := range slots {
		if s.Present && s.Err == nil && (last == nil || s.Saved.Seq > last.Seq) {
			last = &s.Saved
		}
	}
	if last == nil {
		t.Fatalf("no state saved in %s: %+v", dir, slots)
	}
	return last.Data
}

func TestRunOncePrintsLogsAndChainHead(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runCLI(t, "run", "--once", "--chain-dir", dir, "--name", "counter", testModule("counter"))
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	// The guest logs its id through the runtime handler and a line on
	// WASI stdout: both reach stderr, one readable line each.
	id := actorRE.FindStringSubmatch(stdout)
	if id == nil {
		t.Fatalf("no actor line in %q", stdout)
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} INFO  counter: ` + regexp.QuoteMeta(id[1]) + `$`).MatchString(stderr) {
		t.Errorf("stderr lacks the actor's log line:\n%s", stderr)
	}
	if !strings.Contains(stderr, "INFO  counter: from stdout source=wasi") {
		t.Errorf("stderr lacks the WASI stdout line:\n%s", stderr)
	}
	evs := chainEvents(t, dir)
	head := headRE.FindStringSubmatch(stdout)
	length := lengthRE.FindStringSubmatch(stdout)
	if head == nil || length == nil || head[1] != evs[len(evs)-1].Hash.String() || length[1] != strconv.Itoa(len(evs)) {
		t.Fatalf("summary %q does not match the chain (%d events, head %s)", stdout, len(evs), evs[len(evs)-1].Hash)
	}

	// A rerun with the same directory resumes: same id, state "xx",
	// the chain continues.
	stdout2, stderr2, code := runCLI(t, "run", "--once", "--chain-dir", dir, "--name", "counter", testModule("counter"))
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr2)
	}
	if id2 := actorRE.FindStringSubmatch(stdout2); id2 == nil || id2[1] != id[1] {
		t.Errorf("second run's id %v, want %s", id2, id[1])
	}
	state := lastSavedState(t, dir)
	if !bytes.HasSuffix(state, []byte("xx")) {
		t.Errorf("saved state %q does not end in the resumed \"xx\"", state)
	}
	if n := len(chainEvents(t, dir)); n <= len(evs) {
		t.Errorf("chain has %d events after the second run, %d before", n, len(evs))
	}
	if _, err := chain.VerifyFile(filepath.Join(dir, chain.FileName)); err != nil {
		t.Errorf("chain does not verify: %v", err)
	}
}

func TestRunFailures(t *testing.T) {
	tests := map[string]struct {
		args    []string
		code    int
		message string
	}{
		"init error":       {args: []string{testModule("initerr")}, code: 1, message: "actor initerr failed: InitFailed: init: no database configured"},
		"timeout":          {args: []string{"--timeout", "100ms", testModule("loop")}, code: 1, message: "Timeout: init: call exceeded its 100ms deadline"},
		"missing init":     {args: []string{testModule("noinit")}, code: 1, message: `MissingExport: compile: module does not export "theater:simple/actor#init"`},
		"no such file":     {args: []string{"nonexistent.wasm"}, code: 2, message: "no such file"},
		"bad log format":   {args: []string{"--log-format", "xml", testModule("counter")}, code: 2, message: `--log-format "xml"`},
		"bad env flag":     {args: []string{"--env", "NOEQUALS", testModule("counter")}, code: 2, message: "want NAME=VALUE"},
		"missing env file": {args: []string{"--env-file", "nope.env", testModule("counter")}, code: 2, message: "reading env file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"run", "--once", "--chain-dir", t.TempDir()}, tc.args...)
			stdout, stderr, code := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.message) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, tc.code, tc.message)
			}
			if tc.code == 1 && tc.message != "" && !strings.Contains(tc.message, "compile") {
				// A failed actor still reports its chain.
				if headRE.FindString(stdout) == "" {
					t.Errorf("no chain head printed for a failed actor: %q", stdout)
				}
			}
		})
	}
}

// TestRunRefusesWhatIsNotAnActor: ACTOR that is neither a module nor an
// Actor YAML is a usage error that says what the file is, not a YAML
// decoder's complaint about Go types.
func TestRunRefusesWhatIsNotAnActor(t *testing.T) {
	tests := map[string]struct {
		file, content string
		want          string
	}{
		"text":             {file: "x.txt", content: "hello world\n", want: "x.txt is neither a WebAssembly module (no \\0asm header) nor an Actor YAML (it is not a YAML mapping with apiVersion: theater.troupe.dev/v1alpha1 and kind: Actor)"},
		"not even YAML":    {file: "main.go", content: "package main\n\nfunc main() {\n\tx := map[string]int{\"a\": 1}\n}\n", want: "main.go is neither a WebAssembly module (no \\0asm header) nor an Actor YAML (not YAML: "},
		"binary":           {file: "x.bin", content: "\x7fELF\x02\x01\x01\x00", want: "x.bin is neither a WebAssembly module (no \\0asm header) nor an Actor YAML (it is binary data)"},
		"YAML, no kind":    {file: "x.yaml", content: "name: hello\nreplicas: 2\n", want: "x.yaml is neither a WebAssembly module (no \\0asm header) nor an Actor YAML (it has no apiVersion and kind)"},
		"another kind":     {file: "pod.yaml", content: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", want: `pod.yaml: decoding Actor: apiVersion "v1" kind "Pod": want theater.troupe.dev/v1alpha1 Actor`},
		"WAT":              {file: "hello.wat", content: ";; a test actor\n(module\n  (func (export \"x\")))\n", want: "hello.wat is WebAssembly text (WAT), not a binary module: compile it first, e.g. with wat2wasm"},
		"WAT named .wasm":  {file: "hello.wasm", content: "(module)", want: "hello.wasm is WebAssembly text (WAT)"},
		"junk named .wasm": {file: "hello.wasm", content: "<html>404</html>", want: "hello.wasm is not a WebAssembly module: it does not start with the \\0asm header"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			mustWrite(t, path, []byte(tc.content))
			_, stderr, code := runCLI(t, "run", "--once", "--chain-dir", t.TempDir(), path)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 with %q", code, stderr, tc.want)
			}
		})
	}
}

func TestRunUntilShutdown(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runCLI(t, "run", "--chain-dir", dir, testModule("shutdown"))
	if code != 0 || !strings.Contains(stdout, "shut itself down") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	evs := chainEvents(t, dir)
	if evs[len(evs)-2].Kind != chain.KindShutdown || evs[len(evs)-1].Kind != chain.KindActorStop {
		t.Errorf("chain ends with %s, %s", evs[len(evs)-2].Kind, evs[len(evs)-1].Kind)
	}
}

func TestRunUntilCanceledStopsGracefully(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startCLI(ctx, "run", "--chain-dir", dir, testModule("counter"))
	// Wait until init has returned: its result is in the (group-committed,
	// lifecycle-synced) chain file.
	waitForChain(t, dir, "init's result", func(evs []chain.Event) bool { return countKind(evs, chain.KindInitResult) > 0 })
	select {
	case r := <-done:
		t.Fatalf("troupe run returned before it was stopped: %+v", r)
	default:
	}
	cancel()
	r := <-done
	if r.code != 0 || !strings.Contains(r.stdout, "init ok, stopped") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	evs := chainEvents(t, dir)
	if last := evs[len(evs)-1]; last.Kind != chain.KindActorStop || !strings.Contains(string(last.Data), "signal") {
		t.Errorf("chain ends with %s %s", last.Kind, last.Data)
	}
}

// waitForChain polls the chain file in dir until cond holds for its
// events (the group commit flushes them soon after they are appended).
func waitForChain(t *testing.T, dir, what string, cond func([]chain.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var evs []chain.Event
		_ = chain.ReadFile(filepath.Join(dir, chain.FileName), func(ev chain.Event) error {
			evs = append(evs, ev)
			return nil
		})
		if cond(evs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the chain after 20s; it has %d events", what, len(evs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunSIGTERM runs the real binary and stops it with SIGTERM: it exits 0
// with the chain flushed and closed by an ActorStop.
func TestRunSIGTERM(t *testing.T) {
	bin := troupeBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "run", "--chain-dir", dir, testModule("counter"))
	// Read only after Wait: exec copies the output in its own goroutines.
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitForChain(t, dir, "init's result", func(evs []chain.Event) bool { return countKind(evs, chain.KindInitResult) > 0 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("troupe run after SIGTERM: %v\nstderr: %s", err, stderr.String())
	}
	if headRE.FindString(stdout.String()) == "" {
		t.Errorf("no chain head printed: %s", stdout.String())
	}
	evs := chainEvents(t, dir)
	if evs[len(evs)-1].Kind != chain.KindActorStop {
		t.Errorf("chain ends with %s", evs[len(evs)-1].Kind)
	}
}

func TestRunJSONLogs(t *testing.T) {
	stdout, stderr, code := runCLI(t, "run", "--once", "--log-format", "json", "--chain-dir", t.TempDir(), testModule("counter"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sawStdout bool
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["msg"] == "from stdout" && rec["level"] == "info" && rec["name"] == "counter" {
			sawStdout = true
		}
	}
	if !sawStdout {
		t.Errorf("no JSON record of the stdout line in %s", stderr)
	}
	var summary map[string]any
	if err := json.Unmarshal([]byte(stdout), &summary); err != nil || len(summary["chainHead"].(string)) != 64 {
		t.Fatalf("summary %q: %v", stdout, err)
	}
}

// writeActorYAML writes an Actor YAML beside a copy of the counter module.
func writeActorYAML(t *testing.T, spec string) string {
	t.Helper()
	dir := t.TempDir()
	wasm, err := os.ReadFile(testModule("counter"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "mods"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mods", "counter.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "actor.yaml")
	doc := "apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: yamlactor, namespace: dev}\nspec:\n" + spec
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// envFileMarker stands for an env file the test writes.
const envFileMarker = "ENV_FILE"

func TestResolveActorYAML(t *testing.T) {
	const component = "  component: {path: mods/counter.wasm}\n"
	tests := map[string]struct {
		spec    string
		opts    runOptions
		wantErr string
		warning string
		env     runtimehandler.MapEnv
		check   func(t *testing.T, s *runSpec)
	}{
		"literal env and initial state": {
			spec: component + "  initialState: 'abc'\n  env:\n  - {name: GREETING, value: hi}\n  - {name: EMPTY, value: ''}\n",
			env:  runtimehandler.MapEnv{"GREETING": {Value: "hi"}, "EMPTY": {Value: ""}},
			check: func(t *testing.T, s *runSpec) {
				if string(s.cfg.InitialState) != "abc" || s.cfg.Name != "yamlactor" || s.cfg.Namespace != "dev" {
					t.Errorf("spec %+v", s)
				}
			},
		},
		"flags override the YAML, --env over --env-file": {
			spec: component + "  env:\n  - {name: A, value: yaml}\n  - {name: B, value: yaml}\n  - {name: C, value: yaml}\n",
			opts: runOptions{env: []string{"B=flag"}, envFiles: []string{envFileMarker}},
			env:  runtimehandler.MapEnv{"A": {Value: "yaml"}, "B": {Value: "flag"}, "C": {Value: "file"}, "D": {Value: "file"}},
		},
		"optional references warn and stay unset": {
			spec:    component + "  env:\n  - name: FLAG\n    valueFrom: {configMapKeyRef: {name: flags, key: f, optional: true}}\n  envFrom:\n  - {prefix: X_, configMapRef: {name: more, optional: true}}\n",
			warning: "key f of ConfigMap flags",
			env:     runtimehandler.MapEnv{},
		},
		"required secret reference fails": {
			spec:    component + "  env:\n  - name: DB_PASSWORD\n    valueFrom: {secretKeyRef: {name: db, key: password}}\n",
			wantErr: "spec.env[0] (DB_PASSWORD) reads key password of Secret db, which troupe run cannot read without a cluster; give it with --env DB_PASSWORD=VALUE",
		},
		"required secret given by a flag stays secret": {
			spec: component + "  env:\n  - name: DB_PASSWORD\n    valueFrom: {secretKeyRef: {name: db, key: password}}\n",
			opts: runOptions{env: []string{"DB_PASSWORD=hunter2"}},
			env:  runtimehandler.MapEnv{"DB_PASSWORD": {Value: "hunter2", Secret: true}},
		},
		"a secret given by --env-file stays secret": {
			spec: component + "  env:\n  - name: C\n    valueFrom: {secretKeyRef: {name: db, key: c}}\n",
			opts: runOptions{envFiles: []string{envFileMarker}},
			env:  runtimehandler.MapEnv{"B": {Value: "file"}, "C": {Value: "file", Secret: true}, "D": {Value: "file"}},
		},
		"names an optional envFrom Secret may provide are secret": {
			spec: component + "  env:\n  - {name: LITERAL, value: yaml}\n  - name: FROM_CM\n    valueFrom: {configMapKeyRef: {name: cm, key: k}}\n" +
				"  envFrom:\n  - {prefix: DB_, secretRef: {name: db, optional: true}}\n  - {configMapRef: {name: settings, optional: true}}\n",
			opts: runOptions{env: []string{"DB_PASSWORD=hunter22", "MODE=fast", "LITERAL=flag", "FROM_CM=flag"}},
			env: runtimehandler.MapEnv{"DB_PASSWORD": {Value: "hunter22", Secret: true}, "MODE": {Value: "fast"},
				"LITERAL": {Value: "flag"}, "FROM_CM": {Value: "flag"}},
		},
		"an envFrom Secret without a prefix may provide any name": {
			spec: component + "  env:\n  - {name: LITERAL, value: yaml}\n  envFrom:\n  - secretRef: {name: creds, optional: true}\n",
			opts: runOptions{env: []string{"TOKEN=abcdef", "LITERAL=flag"}},
			env:  runtimehandler.MapEnv{"TOKEN": {Value: "abcdef", Secret: true}, "LITERAL": {Value: "flag"}},
		},
		"required envFrom fails": {
			spec:    component + "  envFrom:\n  - {secretRef: {name: creds}}\n",
			wantErr: "spec.envFrom[0]: troupe run cannot read Secret creds without a cluster; mark it optional: true",
		},
		"image source is refused": {
			spec:    "  component: {image: registry.example/hello:v1}\n",
			wantErr: "troupe run reads only a local module",
		},
		"sha256 pin is checked": {
			spec:    "  component: {path: mods/counter.wasm, sha256: '" + strings.Repeat("0", 64) + "'}\n",
			wantErr: "spec.component.sha256 pins",
		},
		"missing module": {
			spec:    "  component: {path: mods/missing.wasm}\n",
			wantErr: "spec.component.path",
		},
		"unknown field": {
			spec:    component + "  colour: blue\n",
			wantErr: "unknown field",
		},
		"limits, handler config and flags": {
			spec: component + "  name: manifest-name\n  handlers:\n  - type: runtime\n    config: {maxLogBytes: 100}\n  limits: {maxMemoryPages: 32, callTimeout: 2s, maxLogBytes: 5000, maxEventBytes: 777}\n",
			opts: runOptions{name: "flag-name", timeout: 3 * time.Second},
			env:  runtimehandler.MapEnv{},
			check: func(t *testing.T, s *runSpec) {
				if s.cfg.Name != "flag-name" || s.cfg.MemoryPages != 32 || s.cfg.CallTimeout != 3*time.Second ||
					s.cfg.Handler.MaxLogBytes != 100 || s.cfg.Handler.MaxEventBytes != 777 {
					t.Errorf("spec %+v", s)
				}
			},
		},
		"unknown handler config key": {
			// Validate, as the API server's admission, refuses it first.
			spec:    component + "  handlers:\n  - type: runtime\n    config: {maxBananas: 1}\n",
			wantErr: `spec.handlers[0].config: Invalid value: "object": unknown key maxBananas in the runtime handler config: the known keys are maxLogBytes, maxEventTypeBytes, maxEventBytes and maxMetricNames`,
		},
		"handler config raises a limit over spec.limits' default": {
			spec: component + "  handlers:\n  - type: runtime\n    config: {maxMetricNames: 10000}\n",
			check: func(t *testing.T, s *runSpec) {
				if s.cfg.Handler.MaxMetricNames != 10000 {
					t.Errorf("maxMetricNames %d, want the config's 10000", s.cfg.Handler.MaxMetricNames)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeActorYAML(t, tc.spec)
			opts := tc.opts
			if len(opts.envFiles) > 0 {
				envFile := filepath.Join(filepath.Dir(path), "env")
				if err := os.WriteFile(envFile, []byte("# comment\nC=file\nexport D='file'\nB=file\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				opts.envFiles = []string{envFile}
			}
			s, err := resolveRun(&opts, path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != 2 {
					t.Fatalf("err = %v, want exit 2 with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.env != nil && !equalEnv(s.env, tc.env) {
				t.Errorf("env = %v, want %v", s.env, tc.env)
			}
			if tc.warning != "" && !strings.Contains(strings.Join(s.warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q lack %q", s.warnings, tc.warning)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func equalEnv(a, b runtimehandler.MapEnv) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRunActorYAMLEndToEnd(t *testing.T) {
	path := writeActorYAML(t, "  component: {path: mods/counter.wasm}\n  initialState: 'seed'\n")
	dir := t.TempDir()
	stdout, stderr, code := runCLI(t, "run", "--once", "--chain-dir", dir, path)
	if code != 0 || !strings.Contains(stdout, "actor   yamlactor") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	state := lastSavedState(t, dir)
	if !bytes.HasSuffix(state, []byte("seedx")) {
		t.Errorf("state %q: the YAML's initialState was not passed", state)
	}
}

func TestDefaultChainDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	if got, _ := defaultChainDir("hello"); got != "/state/troupe/actors/hello" {
		t.Errorf("got %s", got)
	}
	if got, _ := defaultChainDir("../../etc"); got != "/state/troupe/actors/.._.._etc" {
		t.Errorf("a name escaped the state directory: %s", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got, _ := defaultChainDir("a/b"); got != "/home/u/.local/state/troupe/actors/a_b" {
		t.Errorf("got %s", got)
	}
}

// TestRunEachExample is the "done when": `troupe run --once` on
// each example's actor.yaml prints its logs and the chain head. The
// examples' YAMLs point at ../../bin/examples/NAME.wasm; the test lays out
// the same tree in a temporary directory with freshly built modules.
func TestRunEachExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	yamls, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "actor.yaml"))
	if len(yamls) == 0 {
		t.Fatal("no examples found")
	}
	for _, src := range yamls {
		name := filepath.Base(filepath.Dir(src))
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			yaml := filepath.Join(root, "examples", name, "actor.yaml")
			mustWrite(t, yaml, mustRead(t, src))
			// js-hello is a component by componentize-js: troupe run
			// runs it like the Go ones (its console.log is its log line).
			mustWrite(t, filepath.Join(root, "bin", "examples", name+".wasm"), testutil.ExampleWasm(t, name))
			stdout, stderr, code := runCLI(t, "run", "--once", "--chain-dir", t.TempDir(), yaml)
			if code != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} (INFO |WARN |ERROR) ` + regexp.QuoteMeta(name) + `: `).MatchString(stderr) {
				t.Errorf("no log line of the actor on stderr:\n%s", stderr)
			}
			if headRE.FindString(stdout) == "" || lengthRE.FindString(stdout) == "" {
				t.Errorf("no chain head and length on stdout:\n%s", stdout)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTickYAML writes an Actor YAML running the engine's ticking test
// actor (internal/actorhost/testdata/tick.wat) in the given mode: its state
// is 16 bytes, the mode byte first, then a tick counter (0) and a time.
func writeTickYAML(t *testing.T, mode byte) string {
	t.Helper()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "tick.wasm"), mustRead(t, testModule("tick")))
	state := string(mode) + `\0\0\0\0\0\0\0` + strings.Repeat("x", 8)
	path := filepath.Join(dir, "actor.yaml")
	mustWrite(t, path, []byte("apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: ticker}\nspec:\n"+
		"  component: {path: tick.wasm}\n  initialState: \""+state+"\"\n"))
	return path
}

func countKind(evs []chain.Event, kind chain.Kind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// TestRunTicksUntilStopped: without --once a ticking actor is called every
// --tick until troupe run is stopped; the summary counts the ticks.
func TestRunTicksUntilStopped(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startCLI(ctx, "run", "--tick", "100ms", "--chain-dir", dir, writeTickYAML(t, 'c'))
	// Ticks change the state, so each is an ActorTick event.
	waitForChain(t, dir, "3 ticks", func(evs []chain.Event) bool { return countKind(evs, "ActorTick") >= 3 })
	cancel()
	r := <-done
	if r.code != 0 || !regexp.MustCompile(`(?m)^result +init ok, \d+ ticks, stopped$`).MatchString(r.stdout) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	evs := chainEvents(t, dir)
	ticks, _ := strconv.Atoi(regexp.MustCompile(`(\d+) ticks`).FindStringSubmatch(r.stdout)[1])
	if n := countKind(evs, "ActorTick"); n != ticks || ticks < 3 {
		t.Errorf("summary says %d ticks, the chain has %d ActorTick events", ticks, n)
	}
	if last := evs[len(evs)-1]; last.Kind != chain.KindActorStop {
		t.Errorf("chain ends with %s", last.Kind)
	}
}

func TestRunTickOutcomes(t *testing.T) {
	tests := map[string]struct {
		mode    byte
		args    []string
		code    int
		result  string // the summary's result line
		message string // in stderr
		ticks   int    // ActorTick events in the chain; -1 for any
	}{
		"tick asks to shut down":   {mode: 'q', args: []string{"--tick", "100ms"}, code: 0, result: "shut itself down", ticks: 3},
		"tick returns err":         {mode: 'E', args: []string{"--tick", "100ms"}, code: 1, result: "failed: TickFailed: tick: tick failed on purpose", message: "actor ticker failed: TickFailed: tick: tick failed on purpose", ticks: 1},
		"tick traps":               {mode: 'T', args: []string{"--tick", "100ms"}, code: 1, result: "failed: Trap: tick:", message: "unreachable", ticks: 0},
		"--once never ticks":       {mode: 'l', args: []string{"--once", "--tick", "100ms"}, code: 0, result: "init ok, 0 ticks, stopped", ticks: 0},
		"negative --tick":          {mode: 'c', args: []string{"--tick", "-1s"}, code: 2, message: "--tick -1s: want at least 100ms (the engine's minimum tick interval), or 0 for no ticks"},
		"--tick below the minimum": {mode: 'c', args: []string{"--tick", "99ms"}, code: 2, message: "--tick 99ms: want at least 100ms"},
		"--tick 0 never ticks":     {mode: 'c', args: []string{"--once", "--tick", "0"}, code: 0, result: "init ok, 0 ticks, stopped", ticks: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(append([]string{"run", "--chain-dir", dir}, tc.args...), writeTickYAML(t, tc.mode))
			stdout, stderr, code := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.message) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, tc.code, tc.message)
			}
			if tc.code == 2 {
				return
			}
			if !strings.Contains(stdout, "result  "+tc.result) {
				t.Errorf("stdout %q lacks result %q", stdout, tc.result)
			}
			if n := countKind(chainEvents(t, dir), "ActorTick"); n != tc.ticks {
				t.Errorf("%d ActorTick events, want %d", n, tc.ticks)
			}
		})
	}
}

func TestTickInterval(t *testing.T) {
	const spec = 300 * time.Millisecond // the spec's tickInterval, or its default
	tests := map[string]struct {
		o    runOptions
		want time.Duration
	}{
		"the spec's":     {o: runOptions{tick: time.Second}, want: spec},
		"--tick 250ms":   {o: runOptions{tick: 250 * time.Millisecond, tickSet: true}, want: 250 * time.Millisecond},
		"--tick 0":       {o: runOptions{tick: 0, tickSet: true}, want: -1},
		"--once":         {o: runOptions{once: true, tick: time.Second}, want: -1},
		"--once --tick":  {o: runOptions{once: true, tick: time.Second, tickSet: true}, want: -1},
		"--tick over it": {o: runOptions{tick: 2 * time.Second, tickSet: true}, want: 2 * time.Second},
		"--once over it": {o: runOptions{once: true, tick: time.Second}, want: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tickInterval(&tc.o, &runSpec{cfg: actorhost.ActorConfig{TickInterval: spec}}); got != tc.want {
				t.Fatalf("tickInterval = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRunSecretInSavedStateStaysScrubbed: a value given for a secretKeyRef
// is a secret in every run, also one that logs the saved state (which
// holds it) before it reads the variable: neither the terminal nor the
// chain sees it.
func TestRunSecretInSavedStateStaysScrubbed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go test actor")
	}
	const secret = "s3cret-token-value"
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "secretstate.wasm"), testutil.BuildActor(t, filepath.Join("cmd", "troupe", "testdata", "secretstate")))
	yaml := filepath.Join(root, "actor.yaml")
	mustWrite(t, yaml, []byte("apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: keeper}\nspec:\n"+
		"  component: {path: secretstate.wasm}\n  env:\n  - name: TOKEN\n    valueFrom: {secretKeyRef: {name: api, key: token}}\n"))
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		stdout, stderr, code := runCLI(t, "run", "--once", "--chain-dir", dir, "--env", "TOKEN="+secret, yaml)
		if code != 0 {
			t.Fatalf("run %d: exit %d\nstdout %s\nstderr %s", run, code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Fatalf("run %d printed the secret:\n%s%s", run, stdout, stderr)
		}
		if run == 2 && !strings.Contains(stderr, "saved state: [redacted]") {
			t.Fatalf("run 2 did not log its scrubbed state:\n%s", stderr)
		}
	}
	if raw := mustRead(t, filepath.Join(dir, chain.FileName)); bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the chain holds the secret")
	}
}
