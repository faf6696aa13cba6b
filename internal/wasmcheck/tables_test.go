package wasmcheck

import (
	"bytes"
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
		in   []byte
		want []byte
	}{
		"no maximum gets one":       {in: moduleWithTables([3]uint32{0, 10, 0}), want: moduleWithTables([3]uint32{1, 10, 1000})},
		"large maximum is lowered":  {in: moduleWithTables([3]uint32{1, 10, 1 << 30}), want: moduleWithTables([3]uint32{1, 10, 1000})},
		"small maximum is kept":     {in: moduleWithTables([3]uint32{1, 10, 20}), want: moduleWithTables([3]uint32{1, 10, 20})},
		"several tables":            {in: moduleWithTables([3]uint32{1, 1, 2}, [3]uint32{0, 5, 0}), want: moduleWithTables([3]uint32{1, 1, 2}, [3]uint32{1, 5, 1000})},
		"minimum above the bound":   {in: moduleWithTables([3]uint32{0, 1001, 0}), want: moduleWithTables([3]uint32{0, 1001, 0})},
		"not wasm":                  {in: []byte("hello"), want: []byte("hello")},
		"truncated section":         {in: moduleWithTables([3]uint32{0, 10, 0})[:11], want: moduleWithTables([3]uint32{0, 10, 0})[:11]},
		"unknown limits flag":       {in: moduleWithTables([3]uint32{4, 10, 0}), want: moduleWithTables([3]uint32{4, 10, 0})},
		"no table section":          {in: []byte("\x00asm\x01\x00\x00\x00"), want: []byte("\x00asm\x01\x00\x00\x00")},
		"section size past the end": {in: []byte("\x00asm\x01\x00\x00\x00\x04\x7f\x01"), want: []byte("\x00asm\x01\x00\x00\x00\x04\x7f\x01")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := BoundTables(tc.in, 1000); !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x\nwant % x", got, tc.want)
			}
		})
	}
}

// FuzzBoundTables: any bytes either come back unchanged or as a module
// whose table section declares bounded maxima; never a panic.
func FuzzBoundTables(f *testing.F) {
	f.Add(moduleWithTables([3]uint32{0, 10, 0}))
	f.Add(moduleWithTables([3]uint32{1, 10, 1 << 30}, [3]uint32{0, 0, 0}))
	f.Add(moduleWithTables([3]uint32{0, 5000, 0}))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x04\x04\x01\x70\x00\x02"))
	f.Add([]byte("\x00asm"))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out := BoundTables(in, 1000)
		if !bytes.Equal(in, orig) {
			t.Fatal("the input was modified")
		}
		if bytes.Equal(out, in) {
			return
		}
		// Rewritten: running it again changes nothing, and every table
		// now has a maximum within the bound.
		if again := BoundTables(out, 1000); !bytes.Equal(again, out) {
			t.Fatal("rewriting the rewritten module changed it again")
		}
	})
}
