package runtimehandler

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/chain"
)

// area.wasm's defaults: the info at 1024 says (4096, 256).
const (
	areaInfo = 1024
	areaPtr  = 4096
	areaCap  = 256
)

// global reads one of area.wasm's exported i32 globals.
func (h *harness) global(name string) uint32 {
	h.t.Helper()
	g := h.mod.ExportedGlobal(name)
	if g == nil {
		h.t.Fatalf("guest exports no global %s", name)
	}
	return uint32(g.Get())
}

// TestResultArea: a guest that exports the result area gets each string
// result that fits written there, one after another within a call and from
// the start again in the next call, without a cabi_realloc; what does not
// fit comes from cabi_realloc, as for a guest without the area. The area
// is asked for once.
func TestResultArea(t *testing.T) {
	long := strings.Repeat("x", areaCap+1)
	h := newHarness(t, "area.wasm", func(o *ActorOptions) {
		o.Env = MapEnv{"GREETING": {Value: "hi there"}, "LONG": {Value: long}, "FILL": {Value: strings.Repeat("f", areaCap)}}
	})
	sys := testSysInfo
	sys.OSRelease = strings.Repeat("r", areaCap-len(sys.Hostname)-len(sys.OSType)+1) // one byte too many for the third
	h.sys.info = sys

	for i := range 3 {
		h.mustCall("call-get-actor-name", retArea)
		if p := h.u32(retArea); p != areaPtr || h.str(retArea) != "hello" {
			t.Fatalf("call %d: get-actor-name = %q at %d, want \"hello\" at the area's start %d", i, h.str(retArea), p, areaPtr)
		}
	}
	if n := h.global("area-calls"); n != 1 {
		t.Errorf("the result area was asked for %d times, want once", n)
	}
	if n := h.global("reallocs"); n != 0 {
		t.Errorf("%d cabi_realloc calls for results that fit the area", n)
	}

	tests := map[string]struct {
		name     string
		want     string
		inArea   bool
		reallocs uint32
	}{
		"a value that fits":           {"GREETING", "hi there", true, 0},
		"a value the area's size":     {"FILL", strings.Repeat("f", areaCap), true, 0},
		"one byte more than the area": {"LONG", long, false, 1},
		"after it, the area again":    {"GREETING", "hi there", true, 1},
	}
	for _, name := range []string{"a value that fits", "a value the area's size", "one byte more than the area", "after it, the area again"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			h.write(argArea, []byte(tc.name))
			h.mustCall("call-get-env", argArea, uint64(len(tc.name)), retArea)
			if h.u8(retArea) != 1 || h.str(retArea+4) != tc.want {
				t.Fatalf("get-env %s = %d %q", tc.name, h.u8(retArea), h.str(retArea+4))
			}
			if p := h.u32(retArea + 4); (p == areaPtr) != tc.inArea {
				t.Errorf("get-env %s at %d, in the area: %v, want %v", tc.name, p, p == areaPtr, tc.inArea)
			}
			if n := h.global("reallocs"); n != tc.reallocs {
				t.Errorf("%d cabi_realloc calls, want %d", n, tc.reallocs)
			}
		})
	}

	t.Run("system info: consecutive in the area, the rest from cabi_realloc", func(t *testing.T) {
		const at = 64 // aligned to 8
		h.mustCall("call-get-system-info", at)
		host, typ, rel := h.u32(at), h.u32(at+8), h.u32(at+16)
		if host != areaPtr || typ != areaPtr+uint32(len(sys.Hostname)) {
			t.Errorf("hostname at %d, os type at %d, want %d and %d", host, typ, areaPtr, areaPtr+len(sys.Hostname))
		}
		if rel >= areaPtr && rel < areaPtr+areaCap {
			t.Errorf("os release at %d, inside the area though it does not fit", rel)
		}
		if h.str(at) != sys.Hostname || h.str(at+8) != sys.OSType || h.str(at+16) != sys.OSRelease {
			t.Errorf("system info strings %q %q %q", h.str(at), h.str(at+8), h.str(at+16))
		}
		if n := h.global("reallocs"); n != 2 {
			t.Errorf("%d cabi_realloc calls in all, want 2 (LONG's and the release's)", n)
		}
	})

	t.Run("an error result's message", func(t *testing.T) {
		h.mustCall("call-log-bad-level", retArea)
		msg, isErr := h.resultErr()
		if !isErr || h.u32(retArea+4) != areaPtr || !strings.Contains(msg, "unknown log level") {
			t.Errorf("log with a bad level: err %v %q at %d", isErr, msg, h.u32(retArea+4))
		}
	})
}

// TestResultAreaIgnored: with noResultArea (the benchmarks' canonical
// baseline) the area is never asked for and every string comes from
// cabi_realloc.
func TestResultAreaIgnored(t *testing.T) {
	h := newHarness(t, "area.wasm")
	h.actor.noResultArea = true
	h.mustCall("call-get-actor-name", retArea)
	if h.str(retArea) != "hello" || h.u32(retArea) == areaPtr {
		t.Fatalf("get-actor-name = %q at %d", h.str(retArea), h.u32(retArea))
	}
	if h.global("area-calls") != 0 || h.global("reallocs") != 1 {
		t.Errorf("area asked %d times, %d reallocs; want 0 and 1", h.global("area-calls"), h.global("reallocs"))
	}
}

// TestHostileResultArea: an area that breaks the contract traps the call
// that needed it, with a reason, and every later one; nothing is written
// outside guest memory and the host carries on.
func TestHostileResultArea(t *testing.T) {
	info := func(ptr, capacity uint32) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, ptr)
		binary.LittleEndian.PutUint32(b[4:], capacity)
		return b
	}
	const page = 65536
	tests := map[string]struct {
		infoAt uint32
		info   []byte
		mode   uint64
		want   string
	}{
		"info misaligned":           {infoAt: 1026, info: info(areaPtr, 16), want: "returned 1026, which is not an aligned 8-byte area inside guest memory"},
		"info past memory":          {infoAt: page - 4, want: "returned 65532, which is not an aligned 8-byte area"},
		"info at 2^32-4":            {infoAt: 0xFFFFFFFC, want: "not an aligned 8-byte area inside guest memory"},
		"area misaligned":           {infoAt: areaInfo, info: info(areaPtr+4, 16), want: "the area's address 4100 is not aligned to 8"},
		"capacity 0":                {infoAt: areaInfo, info: info(areaPtr, 0), want: "the area's capacity 0 is not within 1 to 65536 bytes"},
		"capacity 64 KiB + 1":       {infoAt: areaInfo, info: info(0, maxResultArea+1), want: "capacity 65537"},
		"capacity 2^32-1":           {infoAt: areaInfo, info: info(areaPtr, 0xFFFFFFFF), want: "capacity 4294967295"},
		"area past memory":          {infoAt: areaInfo, info: info(page-64, 128), want: "the area (ptr 65472, 128 bytes) lies outside guest memory of 65536 bytes"},
		"area wraps 2^32":           {infoAt: areaInfo, info: info(0xFFFFFFF8, 64), want: "lies outside guest memory"},
		"the export traps":          {infoAt: areaInfo, mode: 1, want: resultAreaName + " failed"},
		"the export calls the host": {infoAt: areaInfo, mode: 2, want: "called from inside cabi_realloc (or " + resultAreaName + ")"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "area.wasm")
			if tc.info != nil {
				h.write(tc.infoAt, tc.info)
			}
			h.mustCall("set-info", uint64(tc.infoAt))
			h.mustCall("set-mode", tc.mode)
			for call := range 2 { // the second call traps the same way
				te := h.trapCall(tc.want, "call-get-actor-name", retArea)
				if te.Func != "get-actor-name" {
					t.Errorf("call %d: trap of %q, want get-actor-name's", call, te.Func)
				}
			}
			if n := h.global("reallocs"); n != 0 {
				t.Errorf("%d cabi_realloc calls with a bad area", n)
			}
			// Calls that return no string don't need the area and go on.
			h.mustCall("set-mode", 0)
			h.mustCall("call-get-env", argArea, 0, retArea)
			if h.u8(retArea) != 0 {
				t.Errorf("get-env of the empty name found something")
			}
		})
	}
}

// FuzzResultArea registers arbitrary areas and asks for strings of
// arbitrary lengths: either the call traps with a *TrapError, or the string
// is where it belongs (inside the area when it fits, elsewhere when not)
// and reads back intact. The host never panics or writes outside memory.
func FuzzResultArea(f *testing.F) {
	f.Add(uint32(areaInfo), uint32(areaPtr), uint32(areaCap), uint16(5))
	f.Add(uint32(areaInfo), uint32(areaPtr), uint32(areaCap), uint16(300))
	f.Add(uint32(areaInfo), uint32(65536-8), uint32(8), uint16(8))
	f.Add(uint32(areaInfo), uint32(65536-8), uint32(9), uint16(1))
	f.Add(uint32(65532), uint32(0), uint32(1), uint16(0))
	f.Add(uint32(areaInfo), uint32(0), uint32(65536), uint16(65535))
	f.Fuzz(func(t *testing.T, infoAt, ptr, capacity uint32, n uint16) {
		ctx := context.Background()
		r := wazero.NewRuntime(ctx)
		defer r.Close(ctx)
		if _, err := Instantiate(ctx, r); err != nil {
			t.Fatal(err)
		}
		wasm, err := readTestdata("area.wasm")
		if err != nil {
			t.Fatal(err)
		}
		mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		value := strings.Repeat("v", int(n)%20000) // the bump allocator has 48 KiB
		a := newFuzzActor(t, MapEnv{"V": {Value: value}})
		actx := WithActor(ctx, a)
		var info [8]byte
		binary.LittleEndian.PutUint32(info[:], ptr)
		binary.LittleEndian.PutUint32(info[4:], capacity)
		mod.Memory().Write(infoAt, info[:]) // fails harmlessly past memory
		mustCall(t, actx, mod, "set-info", uint64(infoAt))
		mod.Memory().WriteString(argArea, "V")
		_, err = mod.ExportedFunction("call-get-env").Call(actx, argArea, 1, retArea)
		if err != nil {
			var te *TrapError
			if !errors.As(err, &te) {
				t.Fatalf("a call failed without a *TrapError: %v", err)
			}
			return
		}
		valid := infoAt%4 == 0 && uint64(infoAt)+8 <= 65536 && ptr%8 == 0 && capacity >= 1 && capacity <= maxResultArea && uint64(ptr)+uint64(capacity) <= 65536
		if !valid {
			t.Fatalf("the area (%d, %d) at info %d was accepted", ptr, capacity, infoAt)
		}
		got := readU32(t, mod, retArea+4)
		if inArea := len(value) <= int(capacity); inArea != (got == ptr) {
			t.Fatalf("a %d-byte value at %d with the area (%d, %d)", len(value), got, ptr, capacity)
		}
		b, ok := mod.Memory().Read(got, readU32(t, mod, retArea+8))
		if !ok || string(b) != value {
			t.Fatalf("the value read back wrong (%v)", ok)
		}
	})
}

func newFuzzActor(t *testing.T, env MapEnv) *Actor {
	a, err := NewActor(ActorOptions{ID: "fuzz", Name: "fuzz", Chain: chain.NewMemory(chain.Options{}), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustCall(t *testing.T, ctx context.Context, mod api.Module, name string, params ...uint64) {
	t.Helper()
	if _, err := mod.ExportedFunction(name).Call(ctx, params...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func readU32(t *testing.T, mod api.Module, at uint32) uint32 {
	t.Helper()
	v, ok := mod.Memory().ReadUint32Le(at)
	if !ok {
		t.Fatalf("reading u32 at %d", at)
	}
	return v
}
