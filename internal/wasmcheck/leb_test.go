package wasmcheck

import "testing"

// TestReadLEB128: the exported decoders take the shortest and the padded
// encodings within 5 bytes, and refuse what overflows 32 bits, runs past
// 5 bytes or past the input.
func TestReadLEB128(t *testing.T) {
	u32 := map[string]struct {
		in   []byte
		v    uint32
		n    int
		fail bool
	}{
		"zero":             {in: []byte{0}, v: 0, n: 1},
		"624485":           {in: []byte{0xe5, 0x8e, 0x26}, v: 624485, n: 3},
		"padded":           {in: []byte{0x80, 0x80, 0x00}, v: 0, n: 3},
		"max":              {in: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, v: 0xffffffff, n: 5},
		"over 32 bits":     {in: []byte{0xff, 0xff, 0xff, 0xff, 0x1f}, fail: true},
		"six bytes":        {in: []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, fail: true},
		"cut short":        {in: []byte{0x80, 0x80}, fail: true},
		"empty":            {in: nil, fail: true},
		"trailing ignored": {in: []byte{0x05, 0xff}, v: 5, n: 1},
	}
	for name, tc := range u32 {
		t.Run("u32 "+name, func(t *testing.T) {
			v, n, ok := ReadU32(tc.in)
			if ok == tc.fail || (ok && (v != tc.v || n != tc.n)) {
				t.Fatalf("ReadU32(% x) = %d, %d, %v; want %d, %d, ok %v", tc.in, v, n, ok, tc.v, tc.n, !tc.fail)
			}
		})
	}
	s32 := map[string]struct {
		in   []byte
		v    int32
		n    int
		fail bool
	}{
		"zero":             {in: []byte{0}, v: 0, n: 1},
		"minus one":        {in: []byte{0x7f}, v: -1, n: 1},
		"-123456":          {in: []byte{0xc0, 0xbb, 0x78}, v: -123456, n: 3},
		"63":               {in: []byte{0x3f}, v: 63, n: 1},
		"64 needs 2 bytes": {in: []byte{0xc0, 0x00}, v: 64, n: 2},
		"max":              {in: []byte{0xff, 0xff, 0xff, 0xff, 0x07}, v: 1<<31 - 1, n: 5},
		"min":              {in: []byte{0x80, 0x80, 0x80, 0x80, 0x78}, v: -1 << 31, n: 5},
		"over max":         {in: []byte{0x80, 0x80, 0x80, 0x80, 0x08}, fail: true},
		"under min":        {in: []byte{0xff, 0xff, 0xff, 0xff, 0x77}, fail: true},
		"six bytes":        {in: []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, fail: true},
		"cut short":        {in: []byte{0xff}, fail: true},
	}
	for name, tc := range s32 {
		t.Run("s32 "+name, func(t *testing.T) {
			v, n, ok := ReadS32(tc.in)
			if ok == tc.fail || (ok && (v != tc.v || n != tc.n)) {
				t.Fatalf("ReadS32(% x) = %d, %d, %v; want %d, %d, ok %v", tc.in, v, n, ok, tc.v, tc.n, !tc.fail)
			}
		})
	}
}
