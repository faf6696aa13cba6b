package chain

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"testing"
)

// records returns n linked records continuing from, the first of kind
// first, as a chain file holds them (no header), and each record's end.
func records(from Link, n int, first Kind) ([]byte, []int) {
	var out []byte
	var ends []int
	prev := from
	for i := range n {
		e := Event{Seq: prev.Length, Parent: prev.Head, Kind: KindRuntimeOperation, Op: "get-env", Time: int64(i), Data: fmt.Appendf(nil, `{"i":%d}`, i)}
		if i == 0 {
			e.Kind = first
		}
		e.Hash = ComputeHash(&e)
		out = append(out, EncodeRecord(&e)...)
		ends = append(ends, len(out))
		prev = Link{Length: e.Seq + 1, Head: e.Hash}
	}
	return out, ends
}

func TestVerifySegmentSplitsAFileIntoLinkedRuns(t *testing.T) {
	all, ends := records(Link{}, 10, KindActorStart)
	// Three runs: [0,3) [3,4) [4,10); each continues the one before.
	cuts := []int{0, ends[2], ends[3], ends[9]}
	var prev *Link
	for i := 1; i < len(cuts); i++ {
		seg := all[cuts[i-1]:cuts[i]]
		var seen []uint64
		rep, err := VerifySegment(bytes.NewReader(seg), prev, func(e Event) error {
			seen = append(seen, e.Seq)
			return nil
		})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if rep.Bytes != int64(len(seg)) || rep.Sha256 != sha256.Sum256(seg) {
			t.Errorf("run %d: %d bytes, sha %x; want %d, %x", i, rep.Bytes, rep.Sha256, len(seg), sha256.Sum256(seg))
		}
		if rep.Events != uint64(len(seen)) || rep.First != seen[0] || rep.Length != seen[len(seen)-1]+1 {
			t.Errorf("run %d: report %+v, events %v", i, rep, seen)
		}
		if prev != nil && rep.Parent != prev.Head {
			t.Errorf("run %d: parent %s, want %s", i, rep.Parent.Short(), prev.Head.Short())
		}
		end := rep.End()
		prev = &end
	}
	// The file's own verification agrees on the head.
	frep, err := Verify(bytes.NewReader(append([]byte(Magic), all...)))
	if err != nil || !frep.OK() || frep.Head != prev.Head || frep.Length != prev.Length {
		t.Fatalf("file: %+v %v; segments end at %+v", frep, err, prev)
	}
}

func TestVerifySegmentRefuses(t *testing.T) {
	head, _ := records(Link{}, 3, KindActorStart)
	rep, err := VerifySegment(bytes.NewReader(head), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := rep.End()
	next, ends := records(at, 4, KindRuntimeOperation)
	moved, _ := records(at, 2, KindSegmentStart)
	other, _ := records(Link{Length: at.Length, Head: Hash{1}}, 2, KindRuntimeOperation)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	cases := map[string]struct {
		seg     []byte
		prev    *Link
		wantErr string // "" = verifies
	}{
		"a continuation":                      {seg: next, prev: &at},
		"a segment start that links":          {seg: moved, prev: &at},
		"a chain's start with no prev":        {seg: head, prev: nil},
		"a segment start with no prev":        {seg: moved, prev: nil},
		"a mid-chain run with no prev":        {seg: next, prev: nil, wantErr: "first event has seq 3, want 0"},
		"the wrong parent":                    {seg: other, prev: &at, wantErr: "broken link"},
		"a gap":                               {seg: next[ends[0]:], prev: &at, wantErr: "seq 4, want 3"},
		"a chain's start where one continues": {seg: head, prev: &at, wantErr: "seq 0, want 3"},
		"a record cut short":                  {seg: next[:len(next)-1], prev: &at, wantErr: "torn record"},
		"a flipped data bit":                  {seg: flip(next, ends[1]+100), prev: &at, wantErr: "checksum mismatch"},
		"no records":                          {seg: nil, prev: &at, wantErr: ErrEmptySegment.Error()},
		"a file header":                       {seg: append([]byte(Magic), next...), prev: &at, wantErr: "record length"},
		"a segment start after the first one": {seg: append(bytes.Clone(next[:ends[0]]), mustRecords(t, Link{Length: at.Length + 1, Head: firstHash(t, next, at)}, KindSegmentStart)...), prev: &at, wantErr: "segment start after the first event"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := VerifySegment(bytes.NewReader(tc.seg), tc.prev, nil)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr))):
				t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
			case tc.wantErr != "" && tc.wantErr != ErrEmptySegment.Error() && !errors.Is(err, ErrCorrupt):
				t.Fatalf("%v is not ErrCorrupt", err)
			}
		})
	}
}

func mustRecords(t *testing.T, from Link, kind Kind) []byte {
	t.Helper()
	b, _ := records(from, 1, kind)
	return b
}

func firstHash(t *testing.T, seg []byte, at Link) Hash {
	t.Helper()
	var h Hash
	if _, err := VerifySegment(bytes.NewReader(seg), &at, func(e Event) error {
		if h.IsZero() {
			h = e.Hash
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifySegmentReturnsTheCallbacksError(t *testing.T) {
	seg, _ := records(Link{}, 3, KindActorStart)
	stop := errors.New("stop")
	if _, err := VerifySegment(bytes.NewReader(seg), nil, func(Event) error { return stop }); !errors.Is(err, stop) || err.Error() != stop.Error() {
		t.Fatalf("got %v, want the callback's error as is", err)
	}
}

func TestRecordedState(t *testing.T) {
	digest := fmt.Sprintf("%x", sha256.Sum256([]byte("s")))
	cases := map[string]struct {
		kind    Kind
		data    string
		want    StateRecord
		ok      bool
		wantErr bool
	}{
		"a tick":                  {kind: KindTick, data: `{"ok":true,"hasState":true,"stateSha256":"` + digest + `","stateBytes":1}`, want: StateRecord{true, digest, 1}, ok: true},
		"a v0.1.0 tick":           {kind: KindTick, data: `{"hasState":true,"stateDigest":"` + digest + `"}`, want: StateRecord{true, digest, -1}, ok: true},
		"a handler without state": {kind: KindHandlerResult, data: `{"ok":false,"hasState":false}`, want: StateRecord{}, ok: true},
		"an init":                 {kind: KindInitResult, data: `{"ok":true,"hasState":true,"stateSha256":"` + digest + `","stateBytes":1}`, want: StateRecord{true, digest, 1}, ok: true},
		"a failed init":           {kind: KindInitResult, data: `{"ok":false,"error":"no"}`},
		"a runtime call":          {kind: KindRuntimeOperation, data: `{"hasState":true}`},
		"a restart":               {kind: KindRestart, data: `{"hasState":true,"stateSha256":"` + digest + `"}`},
		"a tick without hasState": {kind: KindTick, data: `{"ok":true}`, wantErr: true},
		"a tick that is not JSON": {kind: KindTick, data: `x`, wantErr: true},
		"an upper-case digest":    {kind: KindTick, data: `{"hasState":true,"stateSha256":"` + fmt.Sprintf("%X", sha256.Sum256([]byte("s"))) + `"}`, wantErr: true},
		"a short digest":          {kind: KindTick, data: `{"hasState":true,"stateSha256":"abcd"}`, wantErr: true},
		"a negative size":         {kind: KindTick, data: `{"hasState":true,"stateSha256":"` + digest + `","stateBytes":-1}`, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok, err := RecordedState(&Event{Kind: tc.kind, Data: []byte(tc.data)})
			if (err != nil) != tc.wantErr || ok != tc.ok || got != tc.want {
				t.Fatalf("got %+v %v %v; want %+v %v, error %v", got, ok, err, tc.want, tc.ok, tc.wantErr)
			}
		})
	}
}

// Every state-recording event of a real chain, v0.1.0's included, reads.
func TestRecordedStateReadsRealChains(t *testing.T) {
	for _, path := range []string{"../actorhost/testdata/chain-v0.1.0"} {
		if _, err := os.Stat(path); err != nil {
			t.Fatal(err)
		}
		p, err := ResolvePath(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := ReadFile(p, func(e Event) error {
			_, ok, err := RecordedState(&e)
			if ok {
				n++
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("%s: no event records a state", path)
		}
	}
}

// Stored segments come from an object store another party can write:
// whatever the bytes, VerifySegment returns (no panic, no allocation beyond
// one record) and a run it accepts re-verifies as the same run.
func FuzzVerifySegment(f *testing.F) {
	seg, ends := records(Link{}, 4, KindActorStart)
	f.Add(seg, false)
	f.Add(seg[ends[0]:], true)
	f.Add(seg[:len(seg)-3], false)
	f.Add([]byte(Magic), false)
	first := firstHashOf(seg)
	f.Fuzz(func(t *testing.T, b []byte, cont bool) {
		var prev *Link
		if cont {
			prev = &Link{Length: 1, Head: first}
		}
		rep, err := VerifySegment(bytes.NewReader(b), prev, nil)
		if err != nil {
			return
		}
		if rep.Bytes != int64(len(b)) || rep.Sha256 != sha256.Sum256(b) || rep.Events == 0 || rep.Length != rep.First+rep.Events {
			t.Fatalf("accepted %d bytes with report %+v", len(b), rep)
		}
	})
}

func firstHashOf(seg []byte) Hash {
	var h Hash
	_, _ = VerifySegment(bytes.NewReader(seg), nil, func(e Event) error {
		if h.IsZero() {
			h = e.Hash
		}
		return nil
	})
	return h
}
