package theater_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/sdk/theater"
)

// These tests build testdata/abiactor, a Go actor that calls every SDK
// function, and run it under testutil.FakeRuntime, a host-side
// implementation of the canonical ABI written independently of the SDK.

const abiActorDir = "sdk/theater/testdata/abiactor"

func newFake(mode string) *testutil.FakeRuntime {
	fr := &testutil.FakeRuntime{
		ID:      "4f9c2a8e-0d7b-4e0f-9a51-7d3c2b1a0f11",
		Name:    "abi-actor",
		Version: "v9.8.7-test",
		Now:     func() time.Time { return time.UnixMilli(1_700_000_000_123) },
		SystemInfo: testutil.SystemInfo{
			Hostname: "node-7", OSType: "linux", OSRelease: "6.8.0-troupe",
			CPUCount: 12, MemoryTotal: 1 << 36, MemoryAvailable: 3 << 33, Uptime: 987654,
		},
	}
	fr.SetEnv("MODE", mode)
	return fr
}

func TestABIActorImportsEveryRuntimeFunctionWithItsExactSignature(t *testing.T) {
	m := testutil.Compile(t, testutil.BuildActor(t, abiActorDir))
	if err := testutil.CheckGuestABI(m); err != nil {
		t.Fatalf("the SDK's module departs from the guest ABI:\n%v", err)
	}
	if got, all := testutil.RuntimeImportNames(m), testutil.RuntimeFuncNames(); !slices.Equal(got, all) || len(all) != 10 {
		t.Fatalf("runtime imports = %v, want all ten: %v", got, all)
	}
	for _, x := range abi.Exports {
		if _, ok := m.ExportedFunctions()[x.Name]; !ok {
			t.Errorf("does not export %s", x.Name)
		}
	}
}

func TestReportSeesEveryValueTheHostSent(t *testing.T) {
	wasm := testutil.BuildActor(t, abiActorDir)
	fr := newFake("report")
	fr.SetEnv("GREETING", "héllo, wörld")
	g := testutil.StartGuest(t, wasm, fr)

	out, hasOut, err := g.Init(context.Background(), []byte("prior state"), true, fr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !hasOut {
		t.Fatal("init returned no state, want the report")
	}
	var rep struct {
		ID, IDParam, Name, Version string
		NowMillis, NowTime         int64
		Greeting                   string
		GreetingOK, MissingOK      bool
		Sys                        theater.SystemInfo
		LogOK, MetricOK, EventOK   string
		LogErr, MetricErr          string
		EventErr, ShutdownOK       string
		LogErrFunc                 string
		State                      []byte
		HasState                   bool
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("decoding the report %q: %v", out, err)
	}

	wantSys := theater.SystemInfo{
		Hostname: "node-7", OSType: "linux", OSRelease: "6.8.0-troupe",
		CPUCount: 12, MemoryTotal: 1 << 36, MemoryAvailable: 3 << 33, Uptime: 987654,
	}
	checks := map[string]struct{ got, want any }{
		"ActorID":                 {rep.ID, fr.ID},
		"init's actor id":         {rep.IDParam, fr.ID},
		"ActorName":               {rep.Name, fr.Name},
		"TheaterVersion":          {rep.Version, fr.Version},
		"CurrentTimeMillis":       {rep.NowMillis, int64(1_700_000_000_123)},
		"Now":                     {rep.NowTime, int64(1_700_000_000_123)},
		"Getenv(GREETING)":        {rep.Greeting, "héllo, wörld"},
		"Getenv(GREETING) ok":     {rep.GreetingOK, true},
		"Getenv(MISSING) ok":      {rep.MissingOK, false},
		"GetSystemInfo":           {rep.Sys, wantSys},
		"Info error":              {rep.LogOK, ""},
		"RecordMetric error":      {rep.MetricOK, ""},
		"RecordEvent error":       {rep.EventOK, ""},
		"Shutdown error":          {rep.ShutdownOK, ""},
		"Log(loud) error":         {rep.LogErr, `theater: log: unknown log level "loud": use one of debug, info, warn, error`},
		"Log(loud) RuntimeError":  {rep.LogErrFunc, "log"},
		"RecordMetric(NaN) error": {rep.MetricErr, "theater: record-metric: metric value is NaN: use a finite number"},
		"RecordEvent('') error":   {rep.EventErr, `theater: record-event: event type is empty: give a non-empty name, e.g. "user_login"`},
		"state":                   {string(rep.State), "prior state"},
		"hasState":                {rep.HasState, true},
	}
	for name, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", name, c.got, c.want)
		}
	}

	if got, want := fr.Logs(), []testutil.LogLine{{Level: "info", Message: "hello from abi-actor"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("host logs = %+v, want %+v", got, want)
	}
	if got, want := fr.Metrics(), []testutil.Metric{{Name: "good_metric", Value: 1.5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("host metrics = %+v, want %+v", got, want)
	}
	if got, want := fr.Events(), []testutil.Event{{Type: "bytes", Data: []byte{0, 1, 2, 255}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("host events = %+v, want %+v", got, want)
	}
	if data, hasData, requested := fr.ShutdownRequest(); !requested || !hasData || string(data) != "bye" {
		t.Errorf("shutdown = (%q, %v, %v), want (bye, true, true)", data, hasData, requested)
	}
}

func TestInitResults(t *testing.T) {
	wasm := testutil.BuildActor(t, abiActorDir)
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := map[string]struct {
		mode      string
		state     []byte
		hasState  bool
		wantState []byte
		wantHas   bool
		wantErr   string // substring of the *InitError message; "" for ok
	}{
		"none in, none out":                  {mode: "echo"},
		"some empty in, some empty out":      {mode: "echo", state: []byte{}, hasState: true, wantState: []byte{}, wantHas: true},
		"4 MiB state round trip":             {mode: "echo", state: big, hasState: true, wantState: big, wantHas: true},
		"nil state with no error is none":    {mode: "none", state: []byte("x"), hasState: true},
		"error result carries the message":   {mode: "error", wantErr: "boom for actor-1"},
		"a panic becomes an error result":    {mode: "panic", wantErr: "theater: init panicked: assignment to entry in nil map"},
		"an unknown mode is the actor's err": {mode: "nope", wantErr: `unknown MODE "nope"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := testutil.StartGuest(t, wasm, newFake(tc.mode))
			// Twice on one instance: the second call must not see leftovers of the first.
			for call := 1; call <= 2; call++ {
				got, has, err := g.Init(context.Background(), tc.state, tc.hasState, "actor-1")
				if tc.wantErr != "" {
					var ie *testutil.InitError
					if !errors.As(err, &ie) || !strings.Contains(ie.Message, tc.wantErr) {
						t.Fatalf("call %d: err = %v, want an init error containing %q", call, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d: %v", call, err)
				}
				if has != tc.wantHas || !slices.Equal(got, tc.wantState) || (has && got == nil) {
					t.Fatalf("call %d: state = (%d bytes, has=%v), want (%d bytes, has=%v)", call, len(got), has, len(tc.wantState), tc.wantHas)
				}
			}
			if tc.mode == "panic" && !strings.Contains(g.Stderr(), "goroutine") {
				t.Errorf("the panic's stack did not reach stderr: %q", g.Stderr())
			}
		})
	}
}

func TestShutdownDistinguishesNoneFromEmpty(t *testing.T) {
	wasm := testutil.BuildActor(t, abiActorDir)
	tests := map[string]struct {
		mode    string
		hasData bool
	}{
		"Shutdown(nil) is none":            {mode: "shutdown-none", hasData: false},
		"Shutdown([]byte{}) is some(\"\")": {mode: "shutdown-empty", hasData: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fr := newFake(tc.mode)
			g := testutil.StartGuest(t, wasm, fr)
			if _, _, err := g.Init(context.Background(), nil, false, "a"); err != nil {
				t.Fatal(err)
			}
			data, hasData, requested := fr.ShutdownRequest()
			if !requested || hasData != tc.hasData || len(data) != 0 {
				t.Fatalf("shutdown = (%q, hasData=%v, requested=%v), want hasData=%v", data, hasData, requested, tc.hasData)
			}
		})
	}
}

// TestStressKeepsHostBuffersAlive makes the guest collect garbage while the
// host writes 256 KiB strings (and three 100 KiB ones in one get-system-info)
// into buffers from cabi_realloc, from four goroutines; the guest checks every
// value it gets back.
func TestStressKeepsHostBuffersAlive(t *testing.T) {
	wasm := testutil.BuildActor(t, abiActorDir)
	fr := newFake("stress")
	const unit, repeat = "0123456789abcdef", 1 << 14 // 256 KiB
	fr.SetEnv("BIG", strings.Repeat(unit, repeat))
	fr.SetEnv("BIG_UNIT", unit)
	fr.SetEnv("BIG_REPEAT", strconv.Itoa(repeat))
	fr.SetEnv("ITERATIONS", "20")
	const sysLen = 100 << 10
	fr.SystemInfo.Hostname = strings.Repeat("h", sysLen)
	fr.SystemInfo.OSType = strings.Repeat("t", sysLen)
	fr.SystemInfo.OSRelease = strings.Repeat("r", sysLen)
	fr.SetEnv("SYS_LEN", strconv.Itoa(sysLen))
	fr.ReallocChurn = 1 << 20
	g := testutil.StartGuest(t, wasm, fr)
	for call := 0; call < 2; call++ {
		if _, _, err := g.Init(context.Background(), nil, false, fr.ID); err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
	}
	// Memory must stay bounded: released pins are garbage, not a leak. 2 calls
	// x 4 goroutines x 20 iterations x ~6.6 MiB (values and churn) = ~1 GiB
	// went through.
	if size := g.Module().Memory().Size(); size > 64<<20 {
		t.Errorf("guest memory grew to %d MiB", size>>20)
	}
}

func BenchmarkGuestCall(b *testing.B) {
	wasm := testutil.BuildActor(b, abiActorDir)
	for _, op := range []string{"time", "actor-id", "getenv", "log"} {
		b.Run(op, func(b *testing.B) {
			fr := newFake("bench:" + op)
			fr.SetEnv("GREETING", "hello")
			g := testutil.StartGuest(b, wasm, fr)
			ctx := context.Background()
			b.ResetTimer()
			if _, _, err := g.Init(ctx, []byte(strconv.Itoa(b.N)), true, "bench"); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func TestTickResults(t *testing.T) {
	wasm := testutil.BuildActor(t, abiActorDir)
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 13)
	}
	now := time.UnixMilli(1_800_000_000_007)
	tests := map[string]struct {
		mode      string
		state     []byte
		hasState  bool
		wantState []byte
		wantHas   bool
		wantErr   string // substring of the *InitError message; "" for ok
		wantEvent string // the "ticked" event's data, "" for none
	}{
		"count from none": {mode: "count", wantState: []byte("1"), wantHas: true,
			wantEvent: `{"count":1,"hasState":false,"nowMs":1800000000007}`},
		"count from 41": {mode: "count", state: []byte("41"), hasState: true, wantState: []byte("42"), wantHas: true,
			wantEvent: `{"count":42,"hasState":true,"nowMs":1800000000007}`},
		"keep some empty":           {mode: "keep", state: []byte{}, hasState: true, wantState: []byte{}, wantHas: true},
		"keep 4 MiB":                {mode: "keep", state: big, hasState: true, wantState: big, wantHas: true},
		"keep none":                 {mode: "keep"},
		"nil is none":               {mode: "none", state: []byte("x"), hasState: true},
		"error result":              {mode: "error", wantErr: "tick boom at 1800000000007"},
		"a panic is an error":       {mode: "panic", wantErr: "theater: tick panicked: assignment to entry in nil map"},
		"the actor's state error":   {mode: "count", state: []byte("x"), hasState: true, wantErr: `tick: state "x" is not a count`},
		"an unknown mode is an err": {mode: "nope", wantErr: `unknown TICK_MODE "nope"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fr := newFake("echo")
			fr.SetEnv("TICK_MODE", tc.mode)
			g := testutil.StartGuest(t, wasm, fr)
			if _, _, err := g.Init(context.Background(), nil, false, "actor-1"); err != nil {
				t.Fatal(err)
			}
			// Twice on one instance: the second tick must not see leftovers.
			for call := 1; call <= 2; call++ {
				got, has, err := g.Tick(context.Background(), tc.state, tc.hasState, now)
				if tc.wantErr != "" {
					var ie *testutil.InitError
					if !errors.As(err, &ie) || !strings.Contains(ie.Message, tc.wantErr) {
						t.Fatalf("tick %d: err = %v, want an error result containing %q", call, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("tick %d: %v", call, err)
				}
				if has != tc.wantHas || !slices.Equal(got, tc.wantState) || (has && got == nil) {
					t.Fatalf("tick %d: state = (%d bytes, has=%v), want (%d bytes, has=%v)", call, len(got), has, len(tc.wantState), tc.wantHas)
				}
			}
			events := fr.Events()
			if tc.wantEvent == "" {
				if len(events) != 0 {
					t.Errorf("events = %+v, want none", events)
				}
			} else if len(events) != 2 || events[0].Type != "ticked" || string(events[0].Data) != tc.wantEvent {
				t.Errorf("events = %+v, want two ticked %s", events, tc.wantEvent)
			}
			if tc.mode == "panic" && !strings.Contains(g.Stderr(), "theater: tick panicked") {
				t.Errorf("the panic's stack did not reach stderr: %q", g.Stderr())
			}
		})
	}
}

// TestTickKeepsHostBuffersAlive runs init's stress test inside ticks (every
// value the host writes is checked, with collections inside cabi_realloc),
// and hands each tick a 1 MiB state: the guest must take it over so it can
// be collected, not keep it pinned (12 MiB of memory at the end, 128 with
// the state buffers kept).
func TestTickKeepsHostBuffersAlive(t *testing.T) {
	wasm := testutil.BuildActor(t, abiActorDir)
	fr := newFake("echo")
	fr.SetEnv("TICK_MODE", "stress")
	const unit, repeat = "fedcba9876543210", 1 << 12 // 64 KiB
	fr.SetEnv("BIG", strings.Repeat(unit, repeat))
	fr.SetEnv("BIG_UNIT", unit)
	fr.SetEnv("BIG_REPEAT", strconv.Itoa(repeat))
	fr.SetEnv("ITERATIONS", "5")
	const sysLen = 10 << 10
	fr.SystemInfo.Hostname = strings.Repeat("h", sysLen)
	fr.SystemInfo.OSType = strings.Repeat("t", sysLen)
	fr.SystemInfo.OSRelease = strings.Repeat("r", sysLen)
	fr.SetEnv("SYS_LEN", strconv.Itoa(sysLen))
	fr.ReallocChurn = 256 << 10
	g := testutil.StartGuest(t, wasm, fr)
	if _, _, err := g.Init(context.Background(), nil, false, fr.ID); err != nil {
		t.Fatal(err)
	}
	state := bytes.Repeat([]byte("s"), 1<<20)
	for call := range 40 {
		got, has, err := g.Tick(context.Background(), state, true, time.Now())
		if err != nil {
			t.Fatalf("tick %d: %v", call, err)
		}
		if !has || !bytes.Equal(got, state) {
			t.Fatalf("tick %d: the state came back changed (%d bytes)", call, len(got))
		}
	}
	// 40 MiB of states went through; a guest that kept them would hold them.
	t.Logf("guest memory after 40 ticks: %d MiB", g.Module().Memory().Size()>>20)
	if size := g.Module().Memory().Size(); size > 32<<20 {
		t.Errorf("guest memory grew to %d MiB over 40 ticks", size>>20)
	}
}

// TestTickSetupMistakesFailInit: OnTick without the ticker import (no tick
// export: the host would never call it) and the import without OnTick are
// init errors that say what to add.
func TestTickSetupMistakesFailInit(t *testing.T) {
	tests := map[string]struct {
		dir, wantErr string
		exportsTick  bool
	}{
		"OnTick without the ticker import": {dir: "sdk/theater/testdata/tickunlinked",
			wantErr: `add import _ "github.com/troupe-dev/troupe/sdk/theater/ticker"`},
		"the ticker import without OnTick": {dir: "sdk/theater/testdata/tickunregistered", exportsTick: true,
			wantErr: "no tick function is registered: call theater.OnTick"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wasm := testutil.BuildActor(t, tc.dir)
			m := testutil.Compile(t, wasm)
			if err := testutil.CheckGuestABI(m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m.ExportedFunctions()[abi.Tick.Name]; ok != tc.exportsTick {
				t.Fatalf("exports tick: %v, want %v", ok, tc.exportsTick)
			}
			g := testutil.StartGuest(t, wasm, newFake("none"))
			_, _, err := g.Init(context.Background(), nil, false, "a")
			var ie *testutil.InitError
			if !errors.As(err, &ie) || !strings.Contains(ie.Message, tc.wantErr) {
				t.Fatalf("init = %v, want an error result containing %q", err, tc.wantErr)
			}
		})
	}
}
