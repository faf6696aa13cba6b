package chain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

type goldenFile struct {
	Magic  string `json:"magic"`
	Chains []struct {
		Name   string        `json:"name"`
		Events []goldenEvent `json:"events"`
	} `json:"chains"`
}

type goldenEvent struct {
	Name      string `json:"name"`
	Seq       uint64 `json:"seq"`
	Parent    string `json:"parent"`
	Kind      string `json:"kind"`
	Op        string `json:"op"`
	Time      int64  `json:"time"`
	DataHex   string `json:"data_hex"`
	Hash      string `json:"hash"`
	RecordHex string `json:"record_hex"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The golden vectors come from testdata/golden.py, an independent
// implementation of docs/chain-format.md; the document's worked example is
// the first of them.
func TestGoldenVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if g.Magic != Magic {
		t.Fatalf("magic %q, want %q", g.Magic, Magic)
	}
	n := 0
	for _, ch := range g.Chains {
		file := []byte(Magic)
		for _, ge := range ch.Events {
			n++
			e := Event{Seq: ge.Seq, Kind: Kind(ge.Kind), Op: ge.Op, Time: ge.Time, Data: unhex(t, ge.DataHex)}
			copy(e.Parent[:], unhex(t, ge.Parent))
			copy(e.Hash[:], unhex(t, ge.Hash))
			if got := ComputeHash(&e); got != e.Hash {
				t.Errorf("%s/%s: hash %s, golden %s", ch.Name, ge.Name, got, e.Hash)
			}
			// The writer's own path (appendRecord) must produce the same bytes.
			rec, sum := appendRecord(nil, newChain(Options{}).hasher, e.Seq, &e.Parent, e.Kind, e.Op, e.Time, e.Data)
			if want := unhex(t, ge.RecordHex); !bytes.Equal(rec, want) || sum != e.Hash {
				t.Errorf("%s/%s: record\n got %x\nwant %x", ch.Name, ge.Name, rec, want)
			}
			if !bytes.Equal(EncodeRecord(&e), rec) {
				t.Errorf("%s/%s: EncodeRecord differs from the writer's record", ch.Name, ge.Name)
			}
			file = append(file, rec...)
		}
		rep, err := Verify(bytes.NewReader(file))
		if err != nil || !rep.OK() || rep.Events != uint64(len(ch.Events)) {
			t.Errorf("%s: golden chain does not verify: %+v %v", ch.Name, rep, err)
		}
	}
	if n < 5 {
		t.Fatalf("only %d golden events", n)
	}
	rep, err := VerifyFile("testdata/golden.chain")
	if err != nil || !rep.OK() || rep.Head.String() != g.Chains[0].Events[len(g.Chains[0].Events)-1].Hash {
		t.Fatalf("golden.chain: %+v %v", rep, err)
	}
}

// A chain built through the public API with the golden inputs must end in
// the golden hashes too.
func TestGoldenThroughAppend(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	events := g.Chains[0].Events
	i := 0
	c := NewMemory(Options{Now: func() time.Time { return time.Unix(0, events[i].Time) }})
	for ; i < len(events); i++ {
		h, err := c.Append(Kind(events[i].Kind), events[i].Op, unhex(t, events[i].DataHex))
		if err != nil {
			t.Fatal(err)
		}
		if h.String() != events[i].Hash {
			t.Fatalf("event %d: Append gave %s, golden %s", i, h, events[i].Hash)
		}
	}
}

// docs/chain-format.md's worked example is the first golden vector, and its
// constants are the code's.
func TestDocMatchesGolden(t *testing.T) {
	doc, err := os.ReadFile("../../docs/chain-format.md")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	first := g.Chains[0].Events[0]
	const fence = "```hex worked-example-record\n"
	i := bytes.Index(doc, []byte(fence))
	if i < 0 {
		t.Fatal("the doc has no worked-example record block")
	}
	block := doc[i+len(fence):]
	block = block[:bytes.Index(block, []byte("```"))]
	if got := strings.Join(strings.Fields(string(block)), ""); got != first.RecordHex {
		t.Fatalf("doc's worked example\n %s\nis not golden event 0\n %s", got, first.RecordHex)
	}
	for _, want := range []string{
		first.Hash,
		hex.EncodeToString([]byte(Magic)),
		fmt.Sprintf("%d ≤ n ≤ %s", minBodySize, groupDigits(maxBodySize)),
		fmt.Sprintf("n = %d + len(kind)", fixedBodySize),
	} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the doc does not say %q", want)
		}
	}
}

func groupDigits(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + " " + s[i:]
	}
	return s
}
