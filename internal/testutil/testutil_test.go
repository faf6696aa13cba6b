package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/abi"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !declaresModule(data, ModulePath) {
		t.Fatalf("RepoRoot = %s, whose go.mod does not declare %s (%v)", root, ModulePath, err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testutil")); err != nil {
		t.Fatalf("RepoRoot = %s does not hold internal/testutil: %v", root, err)
	}
}

func TestDeclaresModule(t *testing.T) {
	tests := map[string]struct {
		gomod string
		want  bool
	}{
		"plain":          {"module github.com/troupe-dev/troupe\n\ngo 1.26\n", true},
		"quoted":         {"module \"github.com/troupe-dev/troupe\"\n", true},
		"another module": {"module github.com/troupe-dev/troupe/sdk\n", false},
		"only a mention": {"// module github.com/troupe-dev/troupe\n", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := declaresModule([]byte(tc.gomod), ModulePath); got != tc.want {
				t.Fatalf("declaresModule = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBuildExampleOncePerBinary(t *testing.T) {
	first := BuildExample(t, "hello")
	if !bytes.HasPrefix(first, []byte("\x00asm")) {
		t.Fatalf("BuildExample returned %d bytes that are not a wasm module", len(first))
	}
	first[0] = 'X' // the caller owns its copy
	start := time.Now()
	second := BuildExample(t, "hello")
	if !bytes.HasPrefix(second, []byte("\x00asm")) {
		t.Fatal("a caller's change leaked into the shared build")
	}
	if !bytes.Equal(first[1:], second[1:]) {
		t.Fatal("a second BuildExample returned another module")
	}
	t.Logf("second BuildExample took %v", time.Since(start))
}

func TestBuildActorReportsCompileErrors(t *testing.T) {
	dir := filepath.Join("internal", "testutil", "testdata", "broken")
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }() // fatalRecorder stops the build's caller like t.Fatal would
		BuildActor(ft, dir)
	}()
	if !strings.Contains(ft.msg, "undefined: doesNotExist") {
		t.Fatalf("BuildActor of a broken package failed with %q, want the compiler's message", ft.msg)
	}
}

// fatalRecorder captures a Fatal instead of failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic("fatal")
}

func TestCheckGuestABIReportsEveryDeparture(t *testing.T) {
	m := Compile(t, readTestdata(t, "badabi.wasm"))
	err := CheckGuestABI(m)
	if err == nil {
		t.Fatal("CheckGuestABI accepted a module that gets everything wrong")
	}
	want := []string{
		`imports theater:simple/runtime.get-env as (i32 i32) -> (), want (i32 i32 i32) -> ()`,
		`imports theater:simple/runtime.get-foo, which the runtime does not provide`,
		`imports theater:simple/runtime.get-current-time as () -> (i32), want () -> (i64)`,
		`imports env.abort from an unknown module`,
		`does not export cabi_realloc`,
		`exports theater:simple/actor#init as (i32 i32 i32 i32 i32) -> (), want (i32 i32 i32 i32 i32) -> (i32)`,
		`exports cabi_post_theater:simple/actor#init as (i32) -> (i32), want (i32) -> ()`,
		`exports troupe:actor/ticker#tick as (i32 i32 i32 i32) -> (i32), want (i32 i32 i32 i64) -> (i32)`,
		`does not export its memory as "memory"`,
	}
	got := strings.Split(err.Error(), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("CheckGuestABI reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWATActorFollowsTheGuestABI(t *testing.T) {
	m := Compile(t, TestActor(t, "wat-actor"))
	if err := CheckGuestABI(m); err != nil {
		t.Fatal(err)
	}
	if got, all := RuntimeImportNames(m), RuntimeFuncNames(); !slices.Equal(got, all) || len(all) != 10 {
		t.Fatalf("the WAT actor imports %v, want all ten: %v", got, all)
	}
	// It is a simple-actor: every export but the optional ticker's and
	// message handlers.
	optional := []string{abi.Tick.Name, abi.TickPost.Name, abi.HandleSend.Name, abi.HandleSendPost.Name,
		abi.HandleRequest.Name, abi.HandleRequestPost.Name, abi.ResultArea.Name, abi.ResultAreaPost.Name}
	for _, x := range abi.Exports {
		_, ok := m.ExportedFunctions()[x.Name]
		if opt := slices.Contains(optional, x.Name); ok == opt {
			t.Errorf("the WAT actor exports %s: %v, want %v", x.Name, ok, !opt)
		}
	}
}

// TestWATActorUnderTheFake runs the SDK-free actor: it checks the fake host
// against a guest written from the ABI alone, and the actor against the fake.
func TestWATActorUnderTheFake(t *testing.T) {
	wasm := TestActor(t, "wat-actor")
	newFake := func() *FakeRuntime {
		return &FakeRuntime{
			ID: "7d1c0e0a-1111-4222-8333-944455556666", Name: "wat", Version: "v0.0.1-wat",
			Now: func() time.Time { return time.UnixMilli(1_234_567_890_123) },
			SystemInfo: SystemInfo{Hostname: "node-w", OSType: "linux", OSRelease: "6.1",
				CPUCount: 3, MemoryTotal: 8 << 30, MemoryAvailable: 1 << 30, Uptime: 42},
		}
	}
	tests := map[string]struct {
		greeting  string // "" unset
		state     []byte
		hasState  bool
		wantState []byte
		wantErr   string
		wantLog   LogLine
	}{
		"first run, greeting set": {
			greeting: "hi from env", wantState: []byte{1},
			wantLog: LogLine{Level: "info", Message: "hi from env"},
		},
		"counter goes up": {
			state: []byte{41}, hasState: true, wantState: []byte{42},
			wantLog: LogLine{Level: "warn", Message: "no WAT_GREETING set"},
		},
		"state of the wrong size": {
			state: []byte("too long"), hasState: true, wantErr: "state must be a single byte",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fr := newFake()
			if tc.greeting != "" {
				fr.SetEnv("WAT_GREETING", tc.greeting)
			}
			g := StartGuest(t, wasm, fr)
			got, has, err := g.Init(context.Background(), tc.state, tc.hasState, fr.ID)
			if tc.wantErr != "" {
				var ie *InitError
				if !errors.As(err, &ie) || ie.Message != tc.wantErr {
					t.Fatalf("err = %v, want init error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !has || !bytes.Equal(got, tc.wantState) {
				t.Fatalf("state = %v (has=%v), want %v", got, has, tc.wantState)
			}
			wantCalls := []string{
				"get-actor-id", "log", "get-actor-name", "record-event", "get-current-time", "record-metric",
				"get-env", "log", "log", "record-event", "get-theater-version", "record-event",
				"get-system-info", "record-metric", "record-metric", "record-event", "shutdown",
			}
			if calls := fr.Calls(); !slices.Equal(calls, wantCalls) {
				t.Errorf("calls = %v, want %v", calls, wantCalls)
			}
			wantLogs := []LogLine{{Level: "info", Message: fr.ID}, tc.wantLog}
			if logs := fr.Logs(); !slices.Equal(logs, wantLogs) {
				t.Errorf("logs = %+v, want %+v", logs, wantLogs)
			}
			wantEvents := []string{
				"wat-name=wat",
				`wat-log-error=unknown log level "loud": use one of debug, info, warn, error`,
				"wat-version=v0.0.1-wat",
				"wat-hostname=node-w",
			}
			var events []string
			for _, e := range fr.Events() {
				events = append(events, e.Type+"="+string(e.Data))
			}
			if !slices.Equal(events, wantEvents) {
				t.Errorf("events = %q, want %q", events, wantEvents)
			}
			wantMetrics := []Metric{{"wat_time_ms", 1_234_567_890_123}, {"wat_cpu_count", 3}, {"wat_memory_total", 8 << 30}}
			if metrics := fr.Metrics(); !slices.Equal(metrics, wantMetrics) {
				t.Errorf("metrics = %+v, want %+v", metrics, wantMetrics)
			}
			if data, hasData, ok := fr.ShutdownRequest(); !ok || !hasData || string(data) != "bye" {
				t.Errorf("shutdown = (%q, %v, %v), want bye", data, hasData, ok)
			}
		})
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
