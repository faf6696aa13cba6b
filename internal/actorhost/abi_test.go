package actorhost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// resultMem builds a memory of size bytes with init's result area at ret.
func resultMem(size int, ret uint32, words ...uint32) []byte {
	mem := make([]byte, size)
	for i, w := range words {
		binary.LittleEndian.PutUint32(mem[int(ret)+4*i:], w)
	}
	return mem
}

func TestDecodeInitResult(t *testing.T) {
	okState := resultMem(4096, 1024, 0, 1, 2000, 5)
	copy(okState[2000:], "state")
	errMsg := resultMem(4096, 1024, 1, 3000, 9)
	copy(errMsg[3000:], "it failed")
	badUTF8 := resultMem(4096, 1024, 1, 3000, 3)
	copy(badUTF8[3000:], "a\xffb")
	longErr := resultMem(8192, 1024, 1, 3000, 5000)
	copy(longErr[3000:], strings.Repeat("e", 5000))
	emptyState := resultMem(4096, 1024, 0, 1, 0xffffffff, 0)
	tests := map[string]struct {
		mem     []byte
		ret     uint32
		want    stateResult
		wantErr string
	}{
		"ok with state":            {mem: okState, ret: 1024, want: stateResult{ok: true, hasState: true, state: []byte("state")}},
		"ok without state":         {mem: resultMem(4096, 1024, 0, 0), ret: 1024, want: stateResult{ok: true}},
		"ok with empty state":      {mem: resultMem(4096, 1024, 0, 1, 4096, 0), ret: 1024, want: stateResult{ok: true, hasState: true, state: []byte{}}},
		"empty state, wild ptr":    {mem: emptyState, ret: 1024, wantErr: "outside the 4096-byte memory"},
		"err":                      {mem: errMsg, ret: 1024, want: stateResult{errMsg: "it failed"}},
		"err with invalid UTF-8":   {mem: badUTF8, ret: 1024, want: stateResult{errMsg: "a\uFFFDb"}},
		"long err is truncated":    {mem: longErr, ret: 1024, want: stateResult{errMsg: strings.Repeat("e", 4096) + "… (5000 bytes in all)"}},
		"result at the very end":   {mem: resultMem(4096, 4080, 0, 0), ret: 4080, want: stateResult{ok: true}},
		"result one past the end":  {mem: make([]byte, 4096), ret: 4084, wantErr: "outside the 4096-byte memory"},
		"result pointer wraps":     {mem: make([]byte, 4096), ret: 0xfffffffc, wantErr: "outside"},
		"misaligned":               {mem: make([]byte, 4096), ret: 2, wantErr: "not aligned"},
		"empty memory":             {mem: nil, ret: 0, wantErr: "outside the 0-byte memory"},
		"bad discriminant":         {mem: resultMem(4096, 0, 2), ret: 0, wantErr: "result discriminant 2"},
		"bad option":               {mem: resultMem(4096, 0, 0, 2), ret: 0, wantErr: "option discriminant 2"},
		"state too large":          {mem: resultMem(4096, 0, 0, 1, 0, 2000), ret: 0, wantErr: "2000 bytes, more than the 1024 allowed"},
		"state 4 GiB":              {mem: resultMem(4096, 0, 0, 1, 0, 0xffffffff), ret: 0, wantErr: "more than the 1024 allowed"},
		"state ptr+len wraps":      {mem: resultMem(4096, 0, 0, 1, 0xfffffff0, 0x20), ret: 0, wantErr: "outside"},
		"err string ptr+len wraps": {mem: resultMem(4096, 0, 1, 0xfffffff0, 0x20), ret: 0, wantErr: "outside"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeResult(tc.mem, tc.ret, 1024, 4096, "init")
			if tc.wantErr != "" {
				var abi *abiError
				if !errors.As(err, &abi) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want an abiError with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ok != tc.want.ok || got.hasState != tc.want.hasState || !bytes.Equal(got.state, tc.want.state) || got.errMsg != tc.want.errMsg {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// The state is a copy: changing guest memory afterwards (cabi_post
	// freeing it) does not change it.
	got, _ := decodeResult(okState, 1024, 1024, 4096, "init")
	copy(okState[2000:], "XXXXX")
	if string(got.state) != "state" {
		t.Fatalf("state aliases guest memory: %q", got.state)
	}
}

// FuzzDecodeInitResult feeds arbitrary memories and result pointers to the
// decoder: it must never panic, and what it accepts must be consistent with
// the memory it read.
func FuzzDecodeInitResult(f *testing.F) {
	seed := func(size int, ret uint32, words ...uint32) {
		f.Add(resultMem(size, ret, words...), ret)
	}
	seed(64, 0, 0, 0)
	seed(64, 16, 0, 1, 40, 8)
	seed(64, 16, 1, 40, 8)
	seed(64, 16, 0, 1, 60, 8)
	seed(64, 16, 1, 0xffffffff, 1)
	seed(64, 48, 0, 1, 0x80000000, 0x80000000)
	seed(64, 0, 3)
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{0, 0, 0}, uint32(0xfffffffc))
	const maxState, maxErr = 32, 16
	f.Fuzz(func(t *testing.T, mem []byte, ret uint32) {
		snapshot := bytes.Clone(mem)
		got, err := decodeResult(mem, ret, maxState, maxErr, "init")
		if !bytes.Equal(mem, snapshot) {
			t.Fatal("the decoder wrote to guest memory")
		}
		if err != nil {
			var abi *abiError
			if !errors.As(err, &abi) {
				t.Fatalf("error %v is not an abiError", err)
			}
			return
		}
		// Accepted: the result area was in memory and aligned.
		if ret%4 != 0 || uint64(ret)+16 > uint64(len(mem)) {
			t.Fatalf("accepted result pointer %#x in a %d-byte memory", ret, len(mem))
		}
		area := mem[ret:]
		switch {
		case got.ok && got.hasState:
			ptr := binary.LittleEndian.Uint32(area[8:])
			n := binary.LittleEndian.Uint32(area[12:])
			if area[0] != 0 || area[4] != 1 || int(n) != len(got.state) || len(got.state) > maxState ||
				!bytes.Equal(got.state, mem[ptr:uint64(ptr)+uint64(n)]) {
				t.Fatalf("state %q does not match the result area", got.state)
			}
		case got.ok:
			if area[0] != 0 || area[4] != 0 || got.state != nil {
				t.Fatalf("ok without state from area %x", area[:16])
			}
		default:
			if area[0] != 1 {
				t.Fatalf("err from discriminant %d", area[0])
			}
			if len(got.errMsg) > 4*maxErr+64 {
				t.Fatalf("error message of %d bytes exceeds its bound", len(got.errMsg))
			}
		}
	})
}

// TestFirstLineKeepsOneLineOfWholeCharacters: a trap's message loses
// wazero's stack trace and is cut within 1024 bytes without splitting a
// UTF-8 character (a guest picks the text of its own traps).
func TestFirstLineKeepsOneLineOfWholeCharacters(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"stack trace":  {in: "wasm error: unreachable\nwasm stack trace:\n\tf()", want: "wasm error: unreachable"},
		"recovered":    {in: "boom (recovered by wazero)\ngoroutine 1", want: "boom"},
		"short":        {in: "fine", want: "fine"},
		"long, ASCII":  {in: strings.Repeat("a", 2000), want: strings.Repeat("a", maxMessage-len("…")) + "…"},
		"long, 3-byte": {in: strings.Repeat("€", 700), want: strings.Repeat("€", (maxMessage-len("…"))/3) + "…"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := firstLine(tc.in)
			if got != tc.want || len(got) > maxMessage || !utf8.ValidString(got) {
				t.Fatalf("firstLine = %q (%d bytes), want %q", got, len(got), tc.want)
			}
		})
	}
}

// FuzzDecodeRequestResult holds handle-request's decoder to the same
// guarantees as init's: any memory and pointer yields a result within its
// bounds that matches the area, or an *abiError; memory is never written.
func FuzzDecodeRequestResult(f *testing.F) {
	seed := func(size int, ret uint32, words ...uint32) {
		f.Add(resultMem(size, ret, words...), ret)
	}
	seed(96, 0, 0, 0, 0, 0, 0, 0, 0)
	seed(96, 16, 0, 1, 60, 8, 1, 70, 4)
	seed(96, 16, 0, 0, 0, 0, 1, 70, 0)
	seed(96, 16, 0, 1, 60, 8, 0, 0, 0)
	seed(96, 16, 1, 60, 8)
	seed(96, 16, 0, 1, 60, 8, 1, 0x80000000, 0x80000000)
	seed(96, 16, 0, 1, 60, 8, 7, 0, 0)
	seed(96, 68, 0, 0)
	seed(96, 16, 2)
	f.Add([]byte{}, uint32(0))
	const maxState, maxResp, maxErr = 32, 24, 16
	f.Fuzz(func(t *testing.T, mem []byte, ret uint32) {
		snapshot := bytes.Clone(mem)
		got, err := decodeRequestResult(mem, ret, maxState, maxResp, maxErr, "handle-request")
		if !bytes.Equal(mem, snapshot) {
			t.Fatal("the decoder wrote to guest memory")
		}
		if err != nil {
			var abi *abiError
			if !errors.As(err, &abi) {
				t.Fatalf("error %v is not an abiError", err)
			}
			return
		}
		if ret%4 != 0 || uint64(ret)+28 > uint64(len(mem)) {
			t.Fatalf("accepted result pointer %#x in a %d-byte memory", ret, len(mem))
		}
		area := mem[ret:]
		check := func(has bool, b []byte, off uint32, bound int) {
			ptr := binary.LittleEndian.Uint32(area[off+4:])
			n := binary.LittleEndian.Uint32(area[off+8:])
			switch {
			case !has && (area[off] != 0 || b != nil):
				t.Fatalf("none from discriminant %d", area[off])
			case has && (area[off] != 1 || int(n) != len(b) || len(b) > bound || !bytes.Equal(b, mem[ptr:uint64(ptr)+uint64(n)])):
				t.Fatalf("%q does not match the area at +%d", b, off)
			}
		}
		if got.ok {
			check(got.hasState, got.state, 4, maxState)
			check(got.hasResponse, got.response, 16, maxResp)
		} else if area[0] != 1 || len(got.errMsg) > 4*maxErr+64 {
			t.Fatalf("err %q from discriminant %d", got.errMsg, area[0])
		}
	})
}
