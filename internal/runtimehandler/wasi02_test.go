package runtimehandler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/chain"
)

func wasiSig(params, results []byte) abi.Signature {
	return abi.Signature{Params: params, Results: results}
}

// testWASIImports are wasi02.wat's imports, as the engine hands them to
// InstantiateWASI.
var testWASIImports = []WASIImport{
	{"wasi:random/random@0.2.12", "get-random-bytes", wasiSig(types(i64, i32), nil)},
	{"wasi:random/random@0.2.12", "get-random-u64", wasiSig(nil, types(i64))},
	{"wasi:random/insecure-seed@0.2.12", "insecure-seed", wasiSig(types(i32), nil)},
	{"wasi:clocks/monotonic-clock@0.2.12", "now", wasiSig(nil, types(i64))},
	{"wasi:clocks/wall-clock@0.2.12", "now", wasiSig(types(i32), nil)},
	{"wasi:cli/stdout@0.2.12", "get-stdout", wasiSig(nil, types(i32))},
	{"wasi:cli/stderr@0.2.12", "get-stderr", wasiSig(nil, types(i32))},
	{"wasi:io/streams@0.2.12", "[method]output-stream.check-write", wasiSig(types(i32, i32), nil)},
	{"wasi:io/streams@0.2.12", "[method]output-stream.blocking-write-and-flush", wasiSig(types(i32, i32, i32, i32), nil)},
	{"wasi:io/streams@0.2.12", "[resource-drop]output-stream", wasiSig(types(i32), nil)},
	{"wasi:cli/environment@0.2.12", "get-environment", wasiSig(types(i32), nil)},
}

// TestWASI02Served: the served WASI 0.2 functions answer from the host's
// sources, and what a guest writes to stdout and stderr becomes its log.
func TestWASI02Served(t *testing.T) {
	h := newHarness(t, "wasi02.wasm")
	// Random: 32 fresh bytes, a list the guest's cabi_realloc holds.
	h.mustCall("random-bytes", 32, retArea)
	if got := h.u32(retArea + 4); got != 32 {
		t.Errorf("get-random-bytes gave %d bytes", got)
	}
	if a, b := h.mustCall("random-u64")[0], h.mustCall("random-u64")[0]; a == b {
		t.Errorf("two random u64 are both %d", a)
	}
	h.mustCall("seed", retArea)
	// Clocks: the wall clock is now, the monotonic one goes forward.
	h.mustCall("wall-now", retArea)
	if s := int64(h.u64(retArea)); time.Since(time.Unix(s, 0)).Abs() > time.Minute {
		t.Errorf("wall-clock now is %d s since the epoch", s)
	}
	m1 := h.mustCall("mono-now")[0]
	m2 := h.mustCall("mono-now")[0]
	if m2 < m1 {
		t.Errorf("the monotonic clock went back: %d then %d", m1, m2)
	}
	// stdout and stderr: log lines and LogEvents.
	out, errOut := h.mustCall("get-stdout")[0], h.mustCall("get-stderr")[0]
	h.mustCall("check-write", out, retArea)
	if h.u8(retArea) != 0 || h.u64(retArea+8) == 0 {
		t.Errorf("check-write: discriminant %d, permit %d", h.u8(retArea), h.u64(retArea+8))
	}
	p, n := h.writeStr(argArea, "hello from console.log\n")
	h.mustCall("write", out, p, n, retArea)
	if h.u8(retArea) != 0 {
		t.Error("write to stdout did not return ok")
	}
	p, n = h.writeStr(argArea, "oops on stderr\n")
	h.mustCall("write", errOut, p, n, retArea)
	h.mustCall("drop", out)
	var lines []string
	for _, ev := range h.events() {
		if ev.Kind == chain.KindLog {
			lines = append(lines, string(ev.Data))
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], `"level":"info","message":"hello from console.log"`) ||
		!strings.Contains(lines[1], `"level":"error","message":"oops on stderr"`) {
		t.Errorf("LogEvents: %q", lines)
	}
}

// TestWASI02Hostile: what a guest hands the WASI 0.2 functions is hostile:
// every bad pointer, length or handle traps that actor, and a function the
// host does not serve traps naming it.
func TestWASI02Hostile(t *testing.T) {
	h := newHarness(t, "wasi02.wasm")
	tests := map[string]struct {
		fn     string
		params []uint64
		want   string
	}{
		"random bytes: too many":       {"random-bytes", []uint64{1 << 40, retArea}, "more than the 1048576 allowed"},
		"random bytes: retptr outside": {"random-bytes", []uint64{8, 1 << 31}, "lies outside guest memory"},
		"seed: misaligned retptr":      {"seed", []uint64{retArea + 1}, "is not aligned"},
		"wall clock: retptr outside":   {"wall-now", []uint64{65536 - 8}, "lies outside guest memory"},
		"write: unknown handle":        {"write", []uint64{7, argArea, 1, retArea}, "output-stream handle 7 is not one the host gave"},
		"write: contents outside":      {"write", []uint64{stdoutHandle, 65530, 100, retArea}, "lies outside guest memory"},
		"write: past the permit":       {"write", []uint64{stdoutHandle, argArea, 5000, retArea}, "more than the 4096 check-write permits"},
		"drop: unknown handle":         {"drop", []uint64{0}, "output-stream handle 0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			te := h.trapCall(tc.want, tc.fn, tc.params...)
			if !strings.HasPrefix(te.Error(), "wasi:") {
				t.Errorf("the trap %q does not name the WASI function first", te)
			}
		})
	}
	_, err := h.call("get-environment", retArea)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "wasi:cli/environment@0.2.12#get-environment is not available to actors") {
		t.Errorf("calling an unserved function: %v", err)
	}
}

// TestInstantiateWASIRefusesAServedFunctionOfAnotherType: a guest can't
// make the host read its stack with another layout than it serves.
func TestInstantiateWASIRefusesAServedFunctionOfAnotherType(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	_, err := InstantiateWASI(ctx, r, "troupe:wasi@0.2/x", []WASIImport{
		{"wasi:random/random@0.2.3", "get-random-u64", wasiSig(types(i32), types(i64))},
	})
	if err == nil || !strings.Contains(err.Error(), "wasi:random/random@0.2.3#get-random-u64 with core type (i32) -> (i64), the host serves it as () -> (i64)") {
		t.Errorf("InstantiateWASI: %v", err)
	}
	// Any type will do for one the host does not serve: it traps.
	if _, err := InstantiateWASI(ctx, r, "troupe:wasi@0.2/y", []WASIImport{
		{"wasi:filesystem/types@0.2.3", "[method]descriptor.read", wasiSig(types(i32, i64, i64, i32), nil)},
	}); err != nil {
		t.Error(err)
	}
	if !IsWASI02("wasi:io/streams@0.2.12") || IsWASI02("wasi:io/streams@0.3.0") || IsWASI02("theater:simple/runtime") {
		t.Error("IsWASI02 is wrong")
	}
}
