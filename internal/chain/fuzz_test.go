package chain

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

func seedChain(f *testing.F) []byte {
	raw, err := os.ReadFile("testdata/golden.chain")
	if err != nil {
		f.Fatal(err)
	}
	return raw
}

// FuzzDecodeBody: no record body, however hostile, panics the decoder, and
// whatever it accepts re-encodes to the same bytes.
func FuzzDecodeBody(f *testing.F) {
	raw := seedChain(f)
	f.Add(raw[len(Magic)+frameHeaderSize : len(Magic)+frameHeaderSize+0x76])
	f.Add(make([]byte, minBodySize))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := decodeBody(body, map[string]string{})
		if err != nil {
			return
		}
		re := EncodeRecord(&e)
		if !bytes.Equal(re[frameHeaderSize:], body) {
			t.Fatalf("decoded body re-encodes differently:\n in  %x\n out %x", body, re[frameHeaderSize:])
		}
	})
}

// FuzzScan: reading any file neither panics nor accepts an event whose hash
// or link is wrong, and an intact read reproduces the input byte for byte.
func FuzzScan(f *testing.F) {
	raw := seedChain(f)
	f.Add(raw)
	f.Add(raw[:len(raw)-7])
	f.Add([]byte(Magic))
	f.Add([]byte("troupe-chain"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := []byte(Magic)
		var prev *Event
		res := scan(bytes.NewReader(in), func(e Event) error {
			if ComputeHash(&e) != e.Hash {
				t.Fatalf("accepted event %d with a wrong hash", e.Seq)
			}
			if prev != nil && (e.Parent != prev.Hash || e.Seq != prev.Seq+1) {
				t.Fatalf("accepted event %d that does not follow its predecessor", e.Seq)
			}
			p := e
			prev = &p
			out = append(out, EncodeRecord(&e)...)
			return nil
		})
		if res.status == scanOK && !bytes.Equal(out, in) {
			t.Fatalf("intact scan does not reproduce its input")
		}
		if res.status == scanOK && res.offset != int64(len(in)) {
			t.Fatalf("intact scan ends at %d of %d", res.offset, len(in))
		}
	})
}

// FuzzFields: whatever strings a guest passes, the object is valid JSON and
// keys and values round-trip, with each invalid UTF-8 byte read as U+FFFD.
func FuzzFields(f *testing.F) {
	f.Add("name", "value")
	f.Add("k\"\\", "\x00\x1f\u2028\xff")
	f.Fuzz(func(t *testing.T, k, v string) {
		var fl Fields
		data := fl.Str(k, v).Data()
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", data, err)
		}
		if got, ok := m[valid(k)]; !ok || got != valid(v) || len(m) != 1 {
			t.Fatalf("%q:%q became %s", k, v, data)
		}
	})
}

func valid(s string) string {
	var b []rune
	for _, r := range s { // ranging yields U+FFFD once per invalid byte
		b = append(b, r)
	}
	return string(b)
}
