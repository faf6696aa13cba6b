package actorhost

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// logSink collects log lines for assertions.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		s.lines = append(s.lines, prefix+" "+args)
		s.mu.Unlock()
	}, funcr.Options{Verbosity: 1})
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// fixedSystemInfo keeps tests off the machine's /proc.
type fixedSystemInfo struct{}

func (fixedSystemInfo) SystemInfo(context.Context) (runtimehandler.SystemInfo, error) {
	return runtimehandler.SystemInfo{Hostname: "test", OSType: "linux", CPUCount: 1}, nil
}

func newTestEngine(t testing.TB) (*Engine, *logSink) {
	t.Helper()
	sink := &logSink{}
	logger := sink.logger()
	var timings MessageTimings
	if _, bench := t.(*testing.B); bench {
		// Benchmarks measure the engine, not a test logger's formatting,
		// and with a host's message histograms.
		logger, timings = logr.Discard(), newHistogramTimings()
	}
	e, err := NewEngine(context.Background(), EngineOptions{
		NoDiskCache: true, Logger: logger, SystemInfo: fixedSystemInfo{}, Version: "test", MessageTimings: timings,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("closing engine: %v", err)
		}
	})
	return e, sink
}

func readWasm(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compile(t testing.TB, e *Engine, name string) *Component {
	t.Helper()
	c, err := e.Compile(context.Background(), readWasm(t, name))
	if err != nil {
		t.Fatalf("compiling %s: %v", name, err)
	}
	return c
}

func start(t testing.TB, e *Engine, cfg ActorConfig) *Actor {
	t.Helper()
	a, err := e.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("starting %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background(), "test over") })
	return a
}

// events returns the actor's chain events (kind, op, data).
func events(t testing.TB, a *Actor) []chain.Event {
	t.Helper()
	var evs []chain.Event
	err := a.Chain().Events(func(ev chain.Event) error {
		ev.Data = append([]byte(nil), ev.Data...)
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func fileEvents(t testing.TB, dir string) []chain.Event {
	t.Helper()
	var evs []chain.Event
	err := chain.ReadFile(filepath.Join(dir, chain.FileName), func(ev chain.Event) error {
		ev.Data = append([]byte(nil), ev.Data...)
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func kinds(evs []chain.Event) []string {
	var ks []string
	for _, ev := range evs {
		if ev.Kind.IsLifecycle() {
			ks = append(ks, string(ev.Kind))
		}
	}
	return ks
}

func findEvent(evs []chain.Event, kind chain.Kind) (chain.Event, map[string]any, bool) {
	for _, ev := range evs {
		if ev.Kind == kind {
			var m map[string]any
			_ = json.Unmarshal(ev.Data, &m)
			return ev, m, true
		}
	}
	return chain.Event{}, nil, false
}

func TestStartRunsInitAndKeepsState(t *testing.T) {
	e, sink := newTestEngine(t)
	a := start(t, e, ActorConfig{ID: "actor-123", Name: "counter", Component: compile(t, e, "counter")})
	if got := a.Phase(); got != PhaseRunning {
		t.Fatalf("phase = %s, want Running (err %v)", got, a.Err())
	}
	// The guest appends "x" to its state; cabi_post then zeroes the state
	// in guest memory, so "x" proves the host copied it before cabi_post.
	if got := string(a.State()); got != "x" {
		t.Fatalf("state = %q, want %q", got, "x")
	}
	// init logged the id it was given (and so _initialize ran: init traps
	// otherwise), and its WASI stdout became a log line too.
	if !sink.contains(`"actor-123"`) {
		t.Errorf("no log line with the actor id; lines: %q", sink.lines)
	}
	if !sink.contains("from stdout") {
		t.Errorf("WASI stdout did not become a log line; lines: %q", sink.lines)
	}
	evs := events(t, a)
	want := []string{"ActorStart", "InitCall", "InitResult"}
	if got := kinds(evs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lifecycle events = %v, want %v", got, want)
	}
	_, res, _ := findEvent(evs, chain.KindInitResult)
	if res["stateSha256"] != digestHex([]byte("x")) || res["ok"] != true {
		t.Errorf("InitResult = %v, want ok with the digest of \"x\"", res)
	}
	_, call, _ := findEvent(evs, chain.KindInitCall)
	if call["hasState"] != false || call["actorID"] != "actor-123" {
		t.Errorf("InitCall = %v", call)
	}
	head, length := a.Head()
	if length != uint64(len(evs)) || head != evs[len(evs)-1].Hash {
		t.Errorf("Head() = %s/%d, chain ends at %s/%d", head.Short(), length, evs[len(evs)-1].Hash.Short(), len(evs))
	}
}

func TestInitialStateIsPassedTheFirstTime(t *testing.T) {
	e, _ := newTestEngine(t)
	a := start(t, e, ActorConfig{Name: "counter", Component: compile(t, e, "counter"), InitialState: []byte("abc")})
	if got := string(a.State()); got != "abcx" {
		t.Fatalf("state = %q, want %q", got, "abcx")
	}
}

func TestRerunWithSameDirResumesStateAndID(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	dir := t.TempDir()
	a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir, InitialState: []byte("s")})
	if err != nil {
		t.Fatal(err)
	}
	id := a.ID()
	_, firstLen := a.Head()
	if err := a.Stop(context.Background(), "first run over"); err != nil {
		t.Fatal(err)
	}
	// InitialState applies only when there is no saved state.
	b, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir, InitialState: []byte("ignored")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background(), "test over")
	if b.ID() != id {
		t.Errorf("id = %s, want the saved %s", b.ID(), id)
	}
	if got := string(b.State()); got != "sxx" {
		t.Errorf("state = %q, want %q", got, "sxx")
	}
	if err := b.Stop(context.Background(), "second run over"); err != nil {
		t.Fatal(err)
	}
	evs := fileEvents(t, dir)
	want := []string{"ActorStart", "InitCall", "InitResult", "ActorStop",
		"ActorStart", "ActorRestart", "InitCall", "InitResult", "ActorStop"}
	if got := kinds(evs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lifecycle events = %v, want %v", got, want)
	}
	if evs[firstLen].Parent != evs[firstLen-1].Hash {
		t.Errorf("second run does not continue the first run's chain")
	}
	if _, err := chain.VerifyFile(filepath.Join(dir, chain.FileName)); err != nil {
		t.Errorf("verifying the chain: %v", err)
	}
	// Only the final files remain: no temporaries from atomic writes.
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if fmt.Sprint(names) != fmt.Sprint([]string{actordir.IdentityFile, actordir.ChainFile, actordir.StateSlotFiles[0], actordir.StateSlotFiles[1]}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestDirOfAnotherActorIsRefused(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	dir := t.TempDir()
	a, err := e.Start(context.Background(), ActorConfig{ID: "first", Name: "counter", Component: c, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a.Stop(context.Background(), "done")
	b, err := e.Start(context.Background(), ActorConfig{ID: "second", Name: "counter", Component: c, Dir: dir})
	if err == nil || b != nil || !strings.Contains(err.Error(), "belongs to actor first") {
		t.Fatalf("Start = %v, %v; want a refusal naming the owner", b, err)
	}
}

func TestCorruptSavedStateIsAnError(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	dir := t.TempDir()
	a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a.Stop(context.Background(), "done")
	path := filepath.Join(dir, actordir.StateSlotFiles[0])
	raw, _ := os.ReadFile(path)
	raw[len(raw)-1] ^= 0xff
	os.WriteFile(path, raw, 0o600)
	if _, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Start with a corrupt state = %v, want a corruption error", err)
	}
}

func TestShutdownRequestedByTheActor(t *testing.T) {
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	a, err := e.Start(context.Background(), ActorConfig{Name: "quitter", Component: compile(t, e, "shutdown"), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Done is open after the actor asked to shut down")
	}
	if a.Phase() != PhaseSucceeded || a.Err() != nil {
		t.Fatalf("phase %s, err %v; want Succeeded, nil", a.Phase(), a.Err())
	}
	data, hasData, requested := a.ShutdownData()
	if !requested || !hasData || string(data) != "bye" {
		t.Fatalf("ShutdownData = %q, %v, %v", data, hasData, requested)
	}
	// The state init returned in the same call is kept.
	if got := string(a.State()); got != "done" {
		t.Errorf("state = %q, want %q", got, "done")
	}
	if err := a.Stop(context.Background(), "release"); err != nil {
		t.Fatal(err)
	}
	evs := fileEvents(t, dir)
	want := []string{"ActorStart", "InitCall", "InitResult", "Shutdown", "ActorStop"}
	if got := kinds(evs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lifecycle events = %v, want %v", got, want)
	}
	_, sd, _ := findEvent(evs, chain.KindShutdown)
	if sd["data"] != "Ynll" { // base64 of "bye"
		t.Errorf("Shutdown event = %v, want the data", sd)
	}
	s, ok, err := readState(dir, limits.DefaultMaxStateBytes)
	if err != nil || !ok || string(s.state) != "done" {
		t.Errorf("saved state = %q, %v, %v", s.state, ok, err)
	}
}

func TestInitErrorFailsTheActor(t *testing.T) {
	e, _ := newTestEngine(t)
	a, err := e.Start(context.Background(), ActorConfig{Name: "broken", Component: compile(t, e, "initerr")})
	if ReasonOf(err) != ReasonInitFailed || !strings.Contains(err.Error(), "no database configured") {
		t.Fatalf("Start error = %v, want InitFailed with init's message", err)
	}
	if a == nil || a.Phase() != PhaseFailed || !errors.Is(a.Err(), err) {
		t.Fatalf("actor = %v; want the failed actor with Err() the error", a)
	}
	defer a.Stop(context.Background(), "test over")
	evs := events(t, a)
	_, res, _ := findEvent(evs, chain.KindInitResult)
	if res["ok"] != false || res["error"] != "no database configured" {
		t.Errorf("InitResult = %v", res)
	}
	_, stop, _ := findEvent(evs, chain.KindActorStop)
	if stop["reason"] != "InitFailed" {
		t.Errorf("ActorStop = %v", stop)
	}
}

// TestHostileGuests runs each hostile module beside a healthy actor on the
// same engine: each must fail alone, with its reason, and the healthy actor
// must keep answering.
func TestHostileGuests(t *testing.T) {
	e, _ := newTestEngine(t)
	healthy := start(t, e, ActorConfig{Name: "healthy", Component: compile(t, e, "counter")})

	tests := map[string]struct {
		wasm    []byte // or file
		file    string
		pages   uint32
		timeout time.Duration
		reason  Reason
		message string // a substring of the failure's message
	}{
		"not wasm":                  {wasm: []byte("\x00asm but not really"), reason: ReasonInvalidModule, message: "not a valid WebAssembly module"},
		"empty bytes":               {wasm: []byte{}, reason: ReasonInvalidModule, message: "not a valid WebAssembly module"},
		"text instead of binary":    {wasm: []byte("(module)"), reason: ReasonInvalidModule, message: "not a valid WebAssembly module"},
		"no init":                   {file: "noinit", reason: ReasonMissingExport, message: `"theater:simple/actor#init"`},
		"no memory":                 {file: "nomemory", reason: ReasonMissingExport, message: `"memory"`},
		"init with wrong signature": {file: "badsig", reason: ReasonInvalidModule, message: "signature (i32) -> (i32), want (i32 i32 i32 i32 i32) -> (i32)"},
		"unknown runtime function":  {file: "unknownimport", reason: ReasonInvalidModule, message: "unknown function theater:simple/runtime.launch-missiles"},
		"unknown import module":     {file: "envimport", reason: ReasonInvalidModule, message: `unknown module "env"`},
		"result pointer outside":    {file: "result_oob", reason: ReasonABI, message: "result pointer 0xfffffff0, outside the 65536-byte memory"},
		"result area past the end":  {file: "result_edge", reason: ReasonABI, message: "outside the 65536-byte memory"},
		"misaligned result":         {file: "result_misaligned", reason: ReasonABI, message: "not aligned to 4"},
		"bad result discriminant":   {file: "result_discriminant", reason: ReasonABI, message: "result discriminant 7"},
		"bad option discriminant":   {file: "option_discriminant", reason: ReasonABI, message: "option discriminant 9"},
		"state past memory":         {file: "state_oob", reason: ReasonABI, message: "state at 0xfffa+100, outside"},
		"2 GiB state":               {file: "state_2gib", reason: ReasonABI, message: "state of 2147483648 bytes, more than the 16777216 allowed"},
		"state range wraps":         {file: "state_wrap", reason: ReasonABI, message: "outside the 65536-byte memory"},
		"error string outside":      {file: "err_oob", reason: ReasonABI, message: "error string at 0x7fff0000+16, outside"},
		"2 GiB error string":        {file: "err_2gib", reason: ReasonABI, message: "error string at 0x10+2147483648, outside"},
		"realloc out of range":      {file: "realloc_oob", reason: ReasonABI, message: "cabi_realloc returned 0xffffff00"},
		"realloc range past end":    {file: "realloc_edge", reason: ReasonABI, message: "cabi_realloc returned 0xfffe"},
		"realloc traps":             {file: "realloc_trap", reason: ReasonTrap, message: "unreachable"},
		"realloc returns null":      {file: "realloc_null", reason: ReasonABI, message: "null pointer"},
		"endless loop":              {file: "loop", timeout: 200 * time.Millisecond, reason: ReasonTimeout, message: "call exceeded its 200ms deadline"},
		"endless start function":    {file: "startloop", timeout: 200 * time.Millisecond, reason: ReasonTimeout, message: "exceeded its 200ms deadline"},
		"sleeps for hours":          {file: "sleep", timeout: 200 * time.Millisecond, reason: ReasonTimeout, message: "exceeded its 200ms deadline"},
		"grows memory to the limit": {file: "grow", pages: 16, reason: ReasonMemoryLimit, message: "limit is 16 pages"},
		"minimum above the limit":   {file: "bigmin", pages: 16, reason: ReasonMemoryLimit, message: "minimum memory of 64 pages, more than the actor's limit of 16"},
		"4e9-element table":         {file: "hugetable", reason: ReasonInvalidModule, message: "table 0 declares 4000000000 elements, more than the 1048576"},
		"endless recursion":         {file: "recurse", timeout: time.Minute, reason: ReasonTrap, message: "stack overflow"}, // deep: seconds under -race
		"proc_exit":                 {file: "procexit", reason: ReasonExit, message: "exited with code 3"},
		"host function trap":        {file: "hosttrap", reason: ReasonTrap, message: "theater:simple/runtime#log"},
		"cabi_post traps":           {file: "posttrap", reason: ReasonTrap, message: "unreachable"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wasm := tc.wasm
			if tc.file != "" {
				wasm = readWasm(t, tc.file)
			}
			c, err := e.Compile(context.Background(), wasm)
			if err == nil {
				var a *Actor
				a, err = e.Start(context.Background(), ActorConfig{Name: name, Component: c,
					MemoryPages: tc.pages, CallTimeout: tc.timeout})
				if a != nil {
					defer a.Stop(context.Background(), "test over")
					if a.Phase() != PhaseFailed {
						t.Errorf("phase = %s, want Failed", a.Phase())
					}
					if _, stop, ok := findEvent(events(t, a), chain.KindActorStop); !ok || stop["reason"] != string(tc.reason) {
						t.Errorf("ActorStop event = %v, want reason %s", stop, tc.reason)
					}
				}
			}
			if err == nil {
				t.Fatal("the hostile guest did not fail")
			}
			var ae *ActorError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *ActorError", err, err)
			}
			if ae.Reason != tc.reason || !strings.Contains(ae.Message, tc.message) {
				t.Fatalf("got %s: %q; want %s with %q", ae.Reason, ae.Message, tc.reason, tc.message)
			}
			if strings.Contains(ae.Message, "\n") {
				t.Errorf("message has several lines: %q", ae.Message)
			}
			// The healthy actor on the same engine is unaffected.
			if _, err := healthy.Call(context.Background(), "loop-time", 10); err != nil {
				t.Fatalf("the healthy actor failed after %s: %v", name, err)
			}
		})
	}
	if healthy.Phase() != PhaseRunning {
		t.Fatalf("healthy actor is %s", healthy.Phase())
	}
	// The engine still starts new actors.
	start(t, e, ActorConfig{Name: "after", Component: compile(t, e, "counter")})
}

// TestLoopingActorDoesNotBlockOthers calls a healthy actor while another
// one spins inside init, and cancels the spinning one through Start's ctx.
func TestLoopingActorDoesNotBlockOthers(t *testing.T) {
	e, _ := newTestEngine(t)
	healthy := start(t, e, ActorConfig{Name: "healthy", Component: compile(t, e, "counter")})
	loop := compile(t, e, "loop")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		a   *Actor
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := e.Start(ctx, ActorConfig{Name: "spinner", Component: loop, CallTimeout: limits.MaxCallTimeout})
		done <- result{a, err}
	}()
	// Wait until the spinner is inside init: its InitCall is recorded.
	deadline := time.Now().Add(10 * time.Second)
	for !spinnerInInit(e) {
		if time.Now().After(deadline) {
			t.Fatal("the spinning actor never reached init")
		}
		time.Sleep(time.Millisecond)
	}
	for range 100 {
		if _, err := healthy.Call(context.Background(), "loop-time", 100); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("the spinning actor's Start returned early: %v", r.err)
	default:
	}
	cancel()
	r := <-done
	if ReasonOf(r.err) != ReasonCanceled {
		t.Fatalf("Start error = %v, want Canceled", r.err)
	}
	r.a.Stop(context.Background(), "test over")
}

func spinnerInInit(e *Engine) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for a := range e.actors {
		if a.cfg.Name != "spinner" {
			continue
		}
		var inInit bool
		_ = a.chain.Events(func(ev chain.Event) error {
			inInit = inInit || ev.Kind == chain.KindInitCall
			return nil
		})
		return inInit
	}
	return false
}

func TestStopCancelsACallThatWillNotReturn(t *testing.T) {
	e, _ := newTestEngine(t)
	a, err := e.Start(context.Background(), ActorConfig{Name: "spinner", Component: compile(t, e, "counter"), CallTimeout: limits.MaxCallTimeout})
	if err != nil {
		t.Fatal(err)
	}
	callErr := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "spin")
		callErr <- err
	}()
	// Wait until the spin call holds the actor.
	deadline := time.Now().Add(10 * time.Second)
	for len(a.callLock) == 0 || a.deadline.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the spin call never started")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Stop(ctx, "shutting down"); err != nil {
		t.Fatal(err)
	}
	if err := <-callErr; ReasonOf(err) != ReasonCanceled {
		t.Fatalf("spin call returned %v, want Canceled", err)
	}
	if a.Phase() != PhaseStopped || a.Err() != nil {
		t.Fatalf("phase %s, err %v; want Stopped, nil", a.Phase(), a.Err())
	}
	_, stop, _ := findEvent(events(t, a), chain.KindActorStop)
	if stop["reason"] != "Stopped" {
		t.Errorf("ActorStop = %v", stop)
	}
}

func TestEngineCloseStopsActors(t *testing.T) {
	e, err := NewEngine(context.Background(), EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Compile(context.Background(), readWasm(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Phase() != PhaseStopped {
		t.Errorf("phase after engine close = %s", a.Phase())
	}
	if got := kinds(fileEvents(t, dir)); got[len(got)-1] != "ActorStop" {
		t.Errorf("chain ends with %v, want ActorStop", got)
	}
	if _, err := e.Compile(context.Background(), readWasm(t, "counter")); err == nil {
		t.Error("Compile on a closed engine succeeded")
	}
}

func TestCompileIsCachedByDigest(t *testing.T) {
	e, _ := newTestEngine(t)
	wasm := readWasm(t, "counter")
	var wg sync.WaitGroup
	got := make([]*Component, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.Compile(context.Background(), bytes.Clone(wasm))
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		}()
	}
	wg.Wait()
	for _, c := range got[1:] {
		if c != got[0] {
			t.Fatal("the same bytes compiled to different components")
		}
	}
	if !strings.HasPrefix(got[0].Digest(), "sha256:") || len(got[0].Digest()) != 7+64 {
		t.Errorf("digest %q", got[0].Digest())
	}
}

func TestDiskCompilationCache(t *testing.T) {
	dir := t.TempDir()
	e, err := NewEngine(context.Background(), EngineOptions{CacheDir: dir, SystemInfo: fixedSystemInfo{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if _, err := e.Compile(context.Background(), readWasm(t, "counter")); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n == 0 {
		t.Fatal("the compilation cache directory is empty after a compile")
	}
}

func TestCallFailureFailsTheActor(t *testing.T) {
	e, _ := newTestEngine(t)
	cfg := ActorConfig{Name: "counter", Component: compile(t, e, "counter"), CallTimeout: 100 * time.Millisecond, Dir: t.TempDir()}
	a := start(t, e, cfg)
	_, err := a.Call(context.Background(), "spin")
	if ReasonOf(err) != ReasonTimeout {
		t.Fatalf("spin = %v, want Timeout", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Done is open after a failed call")
	}
	if a.Phase() != PhaseFailed || ReasonOf(a.Err()) != ReasonTimeout {
		t.Fatalf("phase %s err %v", a.Phase(), a.Err())
	}
	if _, err := a.Call(context.Background(), "loop-time", 1); err == nil {
		t.Fatal("a failed actor accepted a call")
	}
	// The next run, a new Start on its directory as the host does after
	// a backoff, comes back from the saved state.
	if err := a.Stop(context.Background(), "backoff"); err != nil {
		t.Fatal(err)
	}
	b := start(t, e, cfg)
	if string(b.State()) != "xx" || b.ID() != a.ID() {
		t.Errorf("next run: state %q, id %s; want xx, %s", b.State(), b.ID(), a.ID())
	}
}

func TestMemoryLimitGrowthIsRefusedAtTheLimit(t *testing.T) {
	e, _ := newTestEngine(t)
	_, err := e.Start(context.Background(), ActorConfig{Name: "grower", Component: compile(t, e, "grow"), MemoryPages: 40})
	var ae *ActorError
	if !errors.As(err, &ae) || ae.Reason != ReasonMemoryLimit || !strings.Contains(ae.Message, "memory.grow to 41 pages refused") {
		t.Fatalf("error = %v", err)
	}
	// The same module under a larger limit gets further: the limit is the
	// actor's, not the runtime's.
	_, err = e.Start(context.Background(), ActorConfig{Name: "grower", Component: compile(t, e, "grow"), MemoryPages: 80})
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "memory.grow to 81 pages refused") {
		t.Fatalf("error = %v", err)
	}
}

func TestContinueStartsASegment(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "counter")
	first := start(t, e, ActorConfig{ID: "mover", Name: "counter", Component: c})
	head, length := first.Head()
	second := start(t, e, ActorConfig{ID: "mover", Name: "counter", Component: c, InitialState: []byte("init"),
		Continue: &ChainLink{Head: head, Length: length, Node: "node-a"}})
	evs := events(t, second)
	if evs[0].Kind != chain.KindSegmentStart || evs[0].Parent != head || evs[0].Seq != length {
		t.Fatalf("first event = %s seq %d parent %s; want a segment start after %s/%d", evs[0].Kind, evs[0].Seq, evs[0].Parent.Short(), head.Short(), length)
	}
	// The state the actor had stayed where the previous segment was
	// written, and the segment says so: init got the initial state.
	var seg map[string]any
	if err := json.Unmarshal(evs[0].Data, &seg); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"previousHead": head.String(), "previousLength": float64(length), "previousNode": "node-a",
		"actorID": "mover", "stateRestored": false, "stateLost": true}
	if !reflect.DeepEqual(seg, want) {
		t.Errorf("SegmentStart data %v, want %v", seg, want)
	}
	if got := string(second.State()); got != "initx" {
		t.Errorf("state %q, want the initial state with an x", got)
	}
}

// TestConcurrentActors starts healthy and hostile actors from many
// goroutines on one engine, as the host pod does: each ends as its module
// says, independently of the others.
func TestConcurrentActors(t *testing.T) {
	e, _ := newTestEngine(t)
	modules := map[string]Reason{"counter": "", "initerr": ReasonInitFailed, "state_oob": ReasonABI,
		"realloc_trap": ReasonTrap, "loop": ReasonTimeout, "grow": ReasonMemoryLimit}
	comps := map[string]*Component{}
	for name := range modules {
		comps[name] = compile(t, e, name)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 10 {
		for name, want := range modules {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Only the looping actor runs into its deadline: the others'
				// is generous, so that a loaded machine (60 actors on a few
				// cores, -race) cannot turn their reason into Timeout.
				timeout := 30 * time.Second
				if want == ReasonTimeout {
					timeout = 300 * time.Millisecond
				}
				a, err := e.Start(context.Background(), ActorConfig{Name: name, Component: comps[name],
					CallTimeout: timeout, MemoryPages: 32})
				if a == nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				defer a.Stop(context.Background(), "test over")
				if ReasonOf(err) != want {
					errs <- fmt.Errorf("%s: got reason %q (%s), want %q", name, ReasonOf(err), fmt.Sprint(err), want)
					return
				}
				if want == "" {
					if _, err := a.Call(context.Background(), "loop-time", 100); err != nil {
						errs <- fmt.Errorf("%s: call: %w", name, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStartHoldsLimitsToTheAPIBounds: the engine admits the memory limits
// and call timeouts the API admits (internal/limits) and refuses the rest;
// it raises a tick interval below the minimum to it. A zero field is its
// default.
func TestStartHoldsLimitsToTheAPIBounds(t *testing.T) {
	e, _ := newTestEngine(t)
	c := compile(t, e, "tick")
	tests := map[string]struct {
		cfg      ActorConfig
		wantErr  string        // "" to start
		wantTick time.Duration // 0: as given, or the default
	}{
		"defaults":               {cfg: ActorConfig{}},
		"every bound, low end":   {cfg: ActorConfig{MemoryPages: 1, CallTimeout: limits.MinCallTimeout, TickInterval: limits.MinTickInterval}},
		"every bound, high end":  {cfg: ActorConfig{MemoryPages: limits.MaxMemoryPages, CallTimeout: limits.MaxCallTimeout, TickInterval: limits.MaxTickInterval}},
		"never ticks":            {cfg: ActorConfig{TickInterval: -1}},
		"tick below the minimum": {cfg: ActorConfig{TickInterval: time.Nanosecond}, wantTick: limits.MinTickInterval},
		"timeout above":          {cfg: ActorConfig{CallTimeout: time.Hour}, wantErr: "call timeout of 1h0m0s is outside the allowed 1ms to 10m0s"},
		"negative timeout":       {cfg: ActorConfig{CallTimeout: -time.Second}, wantErr: "call timeout of -1s is outside"},
		"memory past wasm32":     {cfg: ActorConfig{MemoryPages: limits.MaxMemoryPages + 1}, wantErr: "memory limit of 65537 pages is outside"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name, cfg.Component, cfg.InitialState = "limited", c, tickState('i')
			a, err := e.Start(context.Background(), cfg)
			if a != nil {
				defer a.Stop(context.Background(), "test over")
			}
			if tc.wantErr == "" {
				// Accepted: the run is the actor's (a 1ms deadline may well
				// fail init on a loaded machine), the limits are the config's.
				if a == nil {
					t.Fatalf("Start refused the config: %v", err)
				}
				want := tc.wantTick
				if want == 0 {
					want = cmp.Or(cfg.TickInterval, limits.DefaultTickInterval)
				}
				if a.tickInterval != want || a.timeout != cmp.Or(cfg.CallTimeout, limits.DefaultCallTimeout) ||
					a.pages != cmp.Or(cfg.MemoryPages, limits.DefaultMemoryPages) {
					t.Errorf("limits: tick %s, timeout %s, %d pages; want tick %s and the config's", a.tickInterval, a.timeout, a.pages, want)
				}
				return
			}
			if a != nil || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Start = %v, %v; want no actor and %q", a, err, tc.wantErr)
			}
		})
	}
}
