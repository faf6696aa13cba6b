package wasmimage

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// leb is an unsigned LEB128.
func leb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// sleb is a signed LEB128 of a 32-bit value.
func sleb(v int32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sec(id byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(append([]byte{id}, leb(uint32(len(b)))...), b...)
}

func module(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

// memory is a memory section of one memory of min pages, exported as
// "memory" (export section included).
func memory(min uint32) []byte {
	return append(sec(sectionMemory, leb(1), []byte{0}, leb(min)),
		sec(7, leb(1), leb(6), []byte("memory"), []byte{2, 0})...)
}

// active is an active segment for memory 0 at an i32.const offset.
func active(off int32, init []byte) []byte {
	return bytes.Join([][]byte{{0, 0x41}, sleb(off), {0x0b}, leb(uint32(len(init))), init}, nil)
}

func data(segs ...[]byte) []byte {
	return sec(sectionData, append(leb(uint32(len(segs))), bytes.Join(segs, nil)...))
}

var big = bytes.Repeat([]byte{0xab}, 70000)

// modules are the table of cases: whether each qualifies.
var modules = []struct {
	name string
	wasm []byte
	ok   bool
}{
	{"two segments", module(memory(3), data(active(16, []byte("hello")), active(70000, []byte("world")))), true},
	{"a segment across pages", module(memory(3), data(active(1, big))), true},
	{"explicit memory index 0", module(memory(1), data(bytes.Join([][]byte{{2, 0, 0x41}, sleb(8), {0x0b}, leb(2), []byte("hi")}, nil))), true},
	{"only zeros", module(memory(1), data(active(0, make([]byte, 100)))), true},
	{"no segments", module(memory(1), data()), true},
	{"overlapping segments, later wins", module(memory(1), data(active(0, []byte("aaaa")), active(2, []byte("bb")))), true},
	{"segment ending at the minimum", module(memory(1), data(active(PageBytes-2, []byte("zz")))), true},
	{"a DataCount section", module(memory(1), sec(sectionDataCount, leb(1)), data(active(0, []byte("x")))), false},
	{"a passive segment", module(memory(1), data(append([]byte{1}, append(leb(1), 'x')...))), false},
	{"a global.get offset", module(
		sec(2, leb(1), leb(3), []byte("env"), leb(1), []byte("g"), []byte{3, 0x7f, 0}),
		memory(1), data(bytes.Join([][]byte{{0, 0x23, 0, 0x0b}, leb(1), []byte("x")}, nil))), false},
	{"a segment out of bounds", module(memory(1), data(active(PageBytes-1, []byte("xy")))), false},
	{"a negative offset", module(memory(1), data(active(-1, []byte("x")))), false},
	{"an imported memory", module(
		sec(2, leb(1), leb(3), []byte("env"), leb(3), []byte("mem"), []byte{2, 0}, leb(1)),
		data(active(0, []byte("x")))), false},
	{"no memory", module(data()), false},
	{"no data section", module(memory(1)), false},
	{"a shared memory", module(sec(sectionMemory, leb(1), []byte{3}, leb(1), leb(1)), data(active(0, []byte("x")))), false},
	{"two data sections", module(memory(1), data(), data()), false},
	{"a truncated data section", module(memory(1), data(active(0, []byte("xyz"))))[:30], false},
	{"a count larger than the section", module(memory(1), sec(sectionData, leb(1000), active(0, []byte("x")))), false},
	{"trailing bytes in the data section", module(memory(1), sec(sectionData, leb(1), active(0, []byte("x")), []byte{0})), false},
}

// TestSplitMatchesWazero: for every module that qualifies, the image is the
// memory wazero builds from the original module, and the rewritten module
// is the original without its data section: it instantiates with a memory
// of zeros. Every module that does not qualify is refused.
func TestSplitMatchesWazero(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, tc := range modules {
		t.Run(tc.name, func(t *testing.T) {
			orig := bytes.Clone(tc.wasm)
			out, img, ok := Split(tc.wasm, 1<<20)
			if !bytes.Equal(orig, tc.wasm) {
				t.Fatal("Split modified its input")
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if len(img.Bytes)%PageBytes != 0 || uint64(len(img.Bytes)) > uint64(img.MinPages)*PageBytes {
				t.Fatalf("image of %d bytes for %d pages", len(img.Bytes), img.MinPages)
			}
			want := instantiate(t, rt, tc.wasm)
			if !bytes.Equal(want[:len(img.Bytes)], img.Bytes) || !allZero(want[len(img.Bytes):]) {
				t.Fatal("the image differs from the memory wazero builds")
			}
			if got := instantiate(t, rt, out); !allZero(got) || len(got) != len(want) {
				t.Fatal("the rewritten module's memory is not zeros of the same size")
			}
			if _, ok := mustSections(t, out)[sectionData]; ok {
				t.Fatal("the rewritten module still has a data section")
			}
		})
	}
}

func mustSections(t *testing.T, wasm []byte) map[byte]section {
	t.Helper()
	s, ok := sections(wasm)
	if !ok {
		t.Fatal("unreadable module")
	}
	return s
}

func instantiate(t *testing.T, rt wazero.Runtime, wasm []byte) []byte {
	t.Helper()
	ctx := context.Background()
	m, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	b, ok := m.Memory().Read(0, m.Memory().Size())
	if !ok {
		t.Fatal("memory unreadable")
	}
	return bytes.Clone(b)
}

// TestSplitTrimsAndBounds: the image stops at its last non-zero page, and
// one past maxImage is refused.
func TestSplitTrimsAndBounds(t *testing.T) {
	wasm := module(memory(100), data(active(0, []byte("x")), active(50*PageBytes, make([]byte, 10))))
	_, img, ok := Split(wasm, 1<<30)
	if !ok || len(img.Bytes) != PageBytes || img.MinPages != 100 || img.Segments != 2 {
		t.Fatalf("ok %v, image %d bytes", ok, len(img.Bytes))
	}
	sparse := module(memory(100), data(active(90*PageBytes, []byte("x"))))
	if _, _, ok := Split(sparse, 10*PageBytes); ok {
		t.Fatal("an image past maxImage was accepted")
	}
}

// FuzzSplit: whatever the bytes, Split never panics, and what it accepts
// is consistent: the image is whole pages within the declared minimum, and
// the module is the input without one section.
func FuzzSplit(f *testing.F) {
	for _, tc := range modules {
		f.Add(tc.wasm)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, img, ok := Split(wasm, 1<<22)
		if !ok {
			return
		}
		if len(img.Bytes)%PageBytes != 0 || uint64(len(img.Bytes)) > uint64(img.MinPages)*PageBytes || len(img.Bytes) > 1<<22 {
			t.Fatalf("image of %d bytes for %d pages", len(img.Bytes), img.MinPages)
		}
		if len(out) >= len(wasm) || !bytes.HasPrefix(wasm, out[:8]) {
			t.Fatalf("rewritten module of %d bytes from %d", len(out), len(wasm))
		}
		if _, ok := mustSections(t, out)[sectionData]; ok {
			t.Fatal("the rewritten module still has a data section")
		}
	})
}
