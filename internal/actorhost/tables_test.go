package actorhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
)

// moduleWithTables builds a module whose only section is a table section
// holding the given (flag, min, max) limits.
func moduleWithTables(limits ...[3]uint32) []byte {
	sec := binary.AppendUvarint(nil, uint64(len(limits)))
	for _, l := range limits {
		sec = append(sec, 0x70, byte(l[0]))
		sec = binary.AppendUvarint(sec, uint64(l[1]))
		if l[0] == 1 {
			sec = binary.AppendUvarint(sec, uint64(l[2]))
		}
	}
	out := append([]byte("\x00asm\x01\x00\x00\x00"), 4)
	out = binary.AppendUvarint(out, uint64(len(sec)))
	return append(out, sec...)
}

func TestBoundTables(t *testing.T) {
	tests := map[string]struct {
		in      []byte
		want    []byte
		wantErr string
	}{
		"no maximum gets one":       {in: moduleWithTables([3]uint32{0, 10, 0}), want: moduleWithTables([3]uint32{1, 10, 1000})},
		"large maximum is lowered":  {in: moduleWithTables([3]uint32{1, 10, 1 << 30}), want: moduleWithTables([3]uint32{1, 10, 1000})},
		"small maximum is kept":     {in: moduleWithTables([3]uint32{1, 10, 20}), want: moduleWithTables([3]uint32{1, 10, 20})},
		"several tables":            {in: moduleWithTables([3]uint32{1, 1, 2}, [3]uint32{0, 5, 0}), want: moduleWithTables([3]uint32{1, 1, 2}, [3]uint32{1, 5, 1000})},
		"minimum above the bound":   {in: moduleWithTables([3]uint32{0, 1001, 0}), wantErr: "table 0 declares 1001 elements, more than the 1000"},
		"not wasm":                  {in: []byte("hello"), want: []byte("hello")},
		"truncated section":         {in: moduleWithTables([3]uint32{0, 10, 0})[:11], want: moduleWithTables([3]uint32{0, 10, 0})[:11]},
		"unknown limits flag":       {in: moduleWithTables([3]uint32{4, 10, 0}), want: moduleWithTables([3]uint32{4, 10, 0})},
		"no table section":          {in: []byte("\x00asm\x01\x00\x00\x00"), want: []byte("\x00asm\x01\x00\x00\x00")},
		"section size past the end": {in: []byte("\x00asm\x01\x00\x00\x00\x04\x7f\x01"), want: []byte("\x00asm\x01\x00\x00\x00\x04\x7f\x01")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := boundTables(tc.in, 1000)
			if tc.wantErr != "" {
				if err == nil || ReasonOf(err) != ReasonInvalidModule || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
					t.Fatalf("err = %v, want InvalidModule %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x\nwant % x", got, tc.want)
			}
		})
	}
}

// FuzzBoundTables: any bytes either come back unchanged, or as a module
// whose table section declares bounded maxima, or as an InvalidModule
// error; never a panic.
func FuzzBoundTables(f *testing.F) {
	f.Add(moduleWithTables([3]uint32{0, 10, 0}))
	f.Add(moduleWithTables([3]uint32{1, 10, 1 << 30}, [3]uint32{0, 0, 0}))
	f.Add(moduleWithTables([3]uint32{0, 5000, 0}))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x04\x04\x01\x70\x00\x02"))
	f.Add([]byte("\x00asm"))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, err := boundTables(in, 1000)
		if !bytes.Equal(in, orig) {
			t.Fatal("the input was modified")
		}
		if err != nil {
			if ReasonOf(err) != ReasonInvalidModule {
				t.Fatalf("error %v is not InvalidModule", err)
			}
			return
		}
		if bytes.Equal(out, in) {
			return
		}
		// Rewritten: running it again changes nothing, and every table
		// now has a maximum within the bound.
		again, err := boundTables(out, 1000)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("rewriting the rewritten module changed it again: %v", err)
		}
	})
}

func TestTableBoundsThroughTheEngine(t *testing.T) {
	e, _ := newTestEngine(t)
	// A table of 4e9 elements is refused before anything is allocated.
	_, err := e.Compile(context.Background(), readWasm(t, "hugetable"))
	if ReasonOf(err) != ReasonInvalidModule {
		t.Fatalf("huge table: %v", err)
	}
	// A 2^31-element table.grow fails for the guest (-1) instead of
	// allocating 16 GiB on the host; a small one still works.
	a := start(t, e, ActorConfig{Name: "tables", Component: compile(t, e, "tablegrow")})
	st := a.State()
	if len(st) != 8 {
		t.Fatalf("state %x", st)
	}
	if huge, small := int32(binary.LittleEndian.Uint32(st)), int32(binary.LittleEndian.Uint32(st[4:])); huge != -1 || small != 1 {
		t.Fatalf("table.grow answered %d for 2^31 and %d for 1000; want -1 and 1 (the old size)", huge, small)
	}
}
