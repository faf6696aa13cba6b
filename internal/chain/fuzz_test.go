package chain

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
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
	f.Add(append([]byte("troupe-chain-v2\n"), raw[len(Magic):]...))
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
		if res.status == scanVersion && (res.events > 0 || res.version == FormatVersion) {
			t.Fatalf("a file of unknown version %d gave %d events", res.version, res.events)
		}
	})
}

// FuzzParseHeader: whatever a file starts with, the header is version 1
// exactly when it starts with Magic, and an unknown version is read from
// its one canonical spelling.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{Magic, "troupe-chain-v2\n", "troupe-chain-v01\n", "troupe-chain-v999999999\n", "troupe-chain-v1", "troupe-"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:min(len(b), maxHeaderSize)]
		kind, size, version := parseHeader(b)
		switch kind {
		case headerV1:
			if !bytes.HasPrefix(b, []byte(Magic)) || size != len(Magic) || version != 1 {
				t.Fatalf("%q read as version 1 (size %d)", b, size)
			}
		case headerTorn:
			if len(b) >= len(Magic) || !bytes.HasPrefix([]byte(Magic), b) {
				t.Fatalf("%q read as a torn header", b)
			}
		case headerUnknown:
			want := HeaderPrefix + strconv.Itoa(version) + "\n"
			if version == FormatVersion || size != len(want) || string(b[:size]) != want {
				t.Fatalf("%q read as version %d (size %d)", b, version, size)
			}
		case headerForeign:
			if bytes.HasPrefix(b, []byte(Magic)) {
				t.Fatalf("%q starts with Magic but read as foreign", b)
			}
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
