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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// testModule is a hand-written test actor of the engine's test suite.
func testModule(name string) string {
	return filepath.Join("..", "..", "internal", "actorhost", "testdata", name+".wasm")
}

// lockedBuffer is a bytes.Buffer safe for a writer and a poller.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runTroupe executes `troupe args...` in-process.
func runTroupe(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut lockedBuffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return out.String(), errOut.String() + err.Error(), exitCode(err)
	}
	return out.String(), errOut.String(), 0
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

func TestRunOncePrintsLogsAndChainHead(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runTroupe(t, context.Background(), "run", "--once", "--chain-dir", dir, "--name", "counter", testModule("counter"))
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
	stdout2, stderr2, code := runTroupe(t, context.Background(), "run", "--once", "--chain-dir", dir, "--name", "counter", testModule("counter"))
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr2)
	}
	if id2 := actorRE.FindStringSubmatch(stdout2); id2 == nil || id2[1] != id[1] {
		t.Errorf("second run's id %v, want %s", id2, id[1])
	}
	state, _ := os.ReadFile(filepath.Join(dir, "state"))
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
		"not a module":     {args: []string{"run_test.go"}, code: 2, message: "decoding Actor"},
		"no such file":     {args: []string{"nonexistent.wasm"}, code: 2, message: "no such file"},
		"bad log format":   {args: []string{"--log-format", "xml", testModule("counter")}, code: 2, message: `--log-format "xml"`},
		"bad env flag":     {args: []string{"--env", "NOEQUALS", testModule("counter")}, code: 2, message: "want NAME=VALUE"},
		"missing env file": {args: []string{"--env-file", "nope.env", testModule("counter")}, code: 2, message: "reading env file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"run", "--once", "--chain-dir", t.TempDir()}, tc.args...)
			stdout, stderr, code := runTroupe(t, context.Background(), args...)
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

func TestRunUntilShutdown(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runTroupe(t, context.Background(), "run", "--chain-dir", dir, testModule("shutdown"))
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
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		o, e, c := runTroupe(t, ctx, "run", "--chain-dir", dir, testModule("counter"))
		done <- result{o, e, c}
	}()
	// Wait until init has returned: its result is in the (group-committed,
	// lifecycle-synced) chain file.
	deadline := time.Now().Add(20 * time.Second)
	for !hasEvent(dir, chain.KindInitResult) {
		if time.Now().After(deadline) {
			t.Fatal("the actor never finished init")
		}
		time.Sleep(5 * time.Millisecond)
	}
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

func hasEvent(dir string, kind chain.Kind) bool {
	found := false
	_ = chain.ReadFile(filepath.Join(dir, chain.FileName), func(ev chain.Event) error {
		found = found || ev.Kind == kind
		return nil
	})
	return found
}

// TestRunSIGTERM runs the real binary and stops it with SIGTERM: it exits 0
// with the chain flushed and closed by an ActorStop.
func TestRunSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the troupe binary")
	}
	bin := filepath.Join(t.TempDir(), "troupe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building troupe: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "run", "--chain-dir", dir, testModule("counter"))
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "from stdout") {
		if time.Now().After(deadline) {
			t.Fatalf("the actor never logged; stderr: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	stdout, stderr, code := runTroupe(t, context.Background(), "run", "--once", "--log-format", "json", "--chain-dir", t.TempDir(), testModule("counter"))
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
				if string(s.initialState) != "abc" || s.name != "yamlactor" || s.namespace != "dev" {
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
				if s.name != "flag-name" || s.memoryPages != 32 || s.timeout != 3*time.Second ||
					s.handler.MaxLogBytes != 100 || s.handler.MaxEventBytes != 777 {
					t.Errorf("spec %+v", s)
				}
			},
		},
		"unknown handler config key": {
			spec:    component + "  handlers:\n  - type: runtime\n    config: {maxBananas: 1}\n",
			wantErr: "maxBananas",
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
	stdout, stderr, code := runTroupe(t, context.Background(), "run", "--once", "--chain-dir", dir, path)
	if code != 0 || !strings.Contains(stdout, "actor   yamlactor") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	state, _ := os.ReadFile(filepath.Join(dir, "state"))
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

func TestTermSinkEscapesGuestText(t *testing.T) {
	var buf bytes.Buffer
	s := newTermSink(&buf, false, false)
	s.now = func() time.Time { return time.Date(2026, 1, 2, 12, 0, 1, 123e6, time.UTC) }
	l := s.WithValues("namespace", "", "name", "hello", "actorID", "id-1")
	l.Info(0, "two\nlines \x1b[31mred\x1b[0m \xff")
	l.Info(0, "careful", "level", "warn", "source", "wasi")
	l.Error(nil, "bad")
	if s.Enabled(1) {
		t.Error("debug enabled without --verbose")
	}
	want := `12:00:01.123 INFO  hello: two\nlines \u001b[31mred\u001b[0m \xff
12:00:01.123 WARN  hello: careful source=wasi
12:00:01.123 ERROR hello: bad
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
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
			mustWrite(t, filepath.Join(root, "bin", "examples", name+".wasm"), testutil.BuildExample(t, name))
			stdout, stderr, code := runTroupe(t, context.Background(), "run", "--once", "--chain-dir", t.TempDir(), yaml)
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
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		o, e, c := runTroupe(t, ctx, "run", "--tick", "5ms", "--chain-dir", dir, writeTickYAML(t, 'c'))
		done <- result{o, e, c}
	}()
	// Ticks change the state, so each is an ActorTick event (flushed to the
	// file by the chain's group commit).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var evs []chain.Event
		_ = chain.ReadFile(filepath.Join(dir, chain.FileName), func(ev chain.Event) error {
			evs = append(evs, ev)
			return nil
		})
		if countKind(evs, "ActorTick") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 ticks in 20s; chain has %d events", len(evs))
		}
		time.Sleep(5 * time.Millisecond)
	}
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
		"tick asks to shut down": {mode: 'q', args: []string{"--tick", "1ms"}, code: 0, result: "shut itself down", ticks: 3},
		"tick returns err":       {mode: 'E', args: []string{"--tick", "1ms"}, code: 1, result: "failed: TickFailed: tick: tick failed on purpose", message: "actor ticker failed: TickFailed: tick: tick failed on purpose", ticks: 1},
		"tick traps":             {mode: 'T', args: []string{"--tick", "1ms"}, code: 1, result: "failed: Trap: tick:", message: "unreachable", ticks: 0},
		"--once never ticks":     {mode: 'l', args: []string{"--once", "--tick", "1ms"}, code: 0, result: "init ok, 0 ticks, stopped", ticks: 0},
		"negative --tick":        {mode: 'c', args: []string{"--tick", "-1s"}, code: 2, message: "--tick -1s: want a positive duration"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(append([]string{"run", "--chain-dir", dir}, tc.args...), writeTickYAML(t, tc.mode))
			stdout, stderr, code := runTroupe(t, context.Background(), args...)
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
	tests := map[string]struct {
		o    runOptions
		spec runSpec
		want time.Duration
	}{
		"default":            {o: runOptions{tick: time.Second}, want: time.Second},
		"--tick 250ms":       {o: runOptions{tick: 250 * time.Millisecond, tickSet: true}, want: 250 * time.Millisecond},
		"--tick 0":           {o: runOptions{tick: 0, tickSet: true}, want: -1},
		"--once":             {o: runOptions{once: true, tick: time.Second}, want: -1},
		"--once --tick":      {o: runOptions{once: true, tick: time.Millisecond, tickSet: true}, want: -1},
		"spec.tickInterval":  {o: runOptions{tick: time.Second}, spec: runSpec{tick: 300 * time.Millisecond}, want: 300 * time.Millisecond},
		"--tick over spec":   {o: runOptions{tick: 2 * time.Second, tickSet: true}, spec: runSpec{tick: 300 * time.Millisecond}, want: 2 * time.Second},
		"--tick 0 over spec": {o: runOptions{tick: 0, tickSet: true}, spec: runSpec{tick: 300 * time.Millisecond}, want: -1},
		"--once over spec":   {o: runOptions{once: true, tick: time.Second}, spec: runSpec{tick: 300 * time.Millisecond}, want: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tickInterval(&tc.o, &tc.spec); got != tc.want {
				t.Fatalf("tickInterval = %v, want %v", got, tc.want)
			}
		})
	}
}
