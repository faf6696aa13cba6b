package theater

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestCanonicalSerializationByHand(t *testing.T) {
	tests := map[string]struct {
		e    Event
		want string
	}{
		"first event": {
			Event{Hash: []byte{}, EventType: "init", Data: []byte{1, 2, 255}},
			`{"hash":[],"parent_hash":null,"event_type":"init","data":[1,2,255]}`,
		},
		"parent and empty data": {
			Event{Hash: []byte{}, ParentHash: []byte{0, 10}, EventType: "x", Data: nil},
			`{"hash":[],"parent_hash":[0,10],"event_type":"x","data":[]}`,
		},
		"escapes like serde_json": {
			Event{Hash: []byte{}, EventType: "q\"b\\s/\b\f\n\r\t\x00\x1f\x7f", Data: []byte{}},
			`{"hash":[],"parent_hash":null,"event_type":"q\"b\\s/\b\f\n\r\t\u0000\u001f` + "\x7f" + `","data":[]}`,
		},
		"non-ASCII stays UTF-8": {
			Event{Hash: []byte{}, EventType: "héllo → 世界", Data: []byte{}},
			`{"hash":[],"parent_hash":null,"event_type":"héllo → 世界","data":[]}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(AppendCanonical(nil, &tc.e)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func load(t *testing.T, name string) []Event {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	if err := Read(f, func(_ int, e Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return evs
}

// canonical.txt holds, per line, the bytes testdata/gen.py hashed.
func TestCanonicalMatchesFixture(t *testing.T) {
	evs := load(t, "valid.json")
	f, err := os.Open("testdata/canonical.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var prev []byte
	for i := 0; sc.Scan(); i++ {
		c := Event{Hash: []byte{}, ParentHash: prev, EventType: evs[i].EventType, Data: evs[i].Data}
		if got := AppendCanonical(nil, &c); !bytes.Equal(got, sc.Bytes()) {
			t.Fatalf("event %d:\n got  %s\n want %s", i, got, sc.Bytes())
		}
		prev = evs[i].Hash
	}
}

func TestVerifyFixtures(t *testing.T) {
	tests := map[string]struct {
		file     string
		firstBad int
		events   int
		reason   string
	}{
		"valid":         {"valid.json", -1, 6, ""},
		"valid compact": {"valid-compact.json", -1, 6, ""},
		"tampered hash": {"tampered-hash.json", 3, 3, "hash mismatch"},
		"tampered data": {"tampered-data.json", 2, 2, "hash mismatch"},
		"broken link":   {"broken-link.json", 4, 4, "broken link"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := Verify(f)
			if err != nil {
				t.Fatal(err)
			}
			if rep.FirstBad != tc.firstBad || rep.Events != tc.events || !strings.Contains(rep.Reason, tc.reason) {
				t.Fatalf("report %+v, want first bad %d after %d events, reason %q", rep, tc.firstBad, tc.events, tc.reason)
			}
		})
	}
}

func TestVerifyRejectsMalformedExports(t *testing.T) {
	raw, err := os.ReadFile("testdata/valid-compact.json")
	if err != nil {
		t.Fatal(err)
	}
	valid := strings.TrimSpace(string(raw))
	first := valid[1 : strings.Index(valid, "}")+1] // a valid first event
	tests := map[string]struct {
		in       string
		firstBad int
		reason   string
	}{
		"not an array":       {`{"hash":[]}`, 0, "JSON array"},
		"empty input":        {``, 0, "not a JSON array"},
		"unknown field":      {`[{"hash":[],"parent_hash":null,"event_type":"a","data":[],"timestamp":1}]`, 0, "timestamp"},
		"missing data":       {`[{"hash":[],"parent_hash":null,"event_type":"a"}]`, 0, `missing "data"`},
		"missing parent":     {`[{"hash":[],"event_type":"a","data":[]}]`, 0, `missing "parent_hash"`},
		"byte too large":     {`[{"hash":[256],"parent_hash":null,"event_type":"a","data":[]}]`, 0, "0-255"},
		"negative byte":      {`[{"hash":[],"parent_hash":null,"event_type":"a","data":[-1]}]`, 0, "0-255"},
		"fractional byte":    {`[{"hash":[],"parent_hash":null,"event_type":"a","data":[1.5]}]`, 0, "0-255"},
		"base64 hash":        {`[{"hash":"AAE=","parent_hash":null,"event_type":"a","data":[]}]`, 0, "array"},
		"invalid utf-8":      {"[{\"hash\":[],\"parent_hash\":null,\"event_type\":\"\xff\",\"data\":[]}]", 0, "UTF-8"},
		"unterminated":       {valid[:len(valid)-1], 6, "unterminated"},
		"trailing data":      {`[]x`, 0, "after the array"},
		"second event wrong": {`[` + first + `,{"hash":[],"parent_hash":[1],"event_type":7,"data":[]}]`, 1, "event_type"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rep, err := Verify(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.FirstBad != tc.firstBad || !strings.Contains(rep.Reason, tc.reason) {
				t.Fatalf("report %+v, want first bad %d with %q", rep, tc.firstBad, tc.reason)
			}
		})
	}
}

func TestEmptyChainIsIntact(t *testing.T) {
	rep, err := Verify(strings.NewReader(" [ ] \n"))
	if err != nil || !rep.OK() || rep.Events != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
}

// Flipping any digit of the valid fixture's numbers is caught.
func TestEveryChangedByteValueIsDetected(t *testing.T) {
	raw, err := os.ReadFile("testdata/valid-compact.json")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range raw {
		if c < '0' || c > '9' {
			continue
		}
		b := append([]byte(nil), raw...)
		b[i] = '0' + (c-'0'+1)%10
		rep, err := Verify(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			t.Fatalf("digit %d changed and the chain still verifies", i)
		}
	}
}

func FuzzVerify(f *testing.F) {
	for _, name := range []string{"valid-compact.json", "broken-link.json"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`[{"hash":[],"parent_hash":null,"event_type":"","data":[]}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var evs []Event
		readErr := Read(bytes.NewReader(in), func(_ int, e Event) error { evs = append(evs, e); return nil })
		rep, err := Verify(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("Verify of an in-memory reader failed: %v", err)
		}
		if !rep.OK() {
			return
		}
		if readErr != nil || rep.Events != len(evs) {
			t.Fatalf("Verify says intact, Read says %v with %d events", readErr, len(evs))
		}
		var prev []byte
		for i := range evs {
			if h := ComputeHash(&evs[i], prev); !bytes.Equal(h[:], evs[i].Hash) {
				t.Fatalf("event %d accepted with a wrong hash", i)
			}
			prev = evs[i].Hash
		}
	})
}
