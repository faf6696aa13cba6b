package archive

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// sampleManifest is a valid manifest of epoch 3 continuing epoch 1.
func sampleManifest() *Manifest {
	ev, ev2 := uint64(2), uint64(6)
	h := func(c byte) string { return string(bytes.Repeat([]byte{c}, 64)) }
	base := Segment{First: 0, Length: 5, Parent: zeroHex, Head: h('a'), Bytes: 700, Sha256: h('b'),
		State: StateRef{Event: &ev, HasState: true, Sha256: h('c'), Bytes: 10, Epoch: 1}}
	return &Manifest{Format: ManifestFormat, ActorID: "0b7c2f8e-3c1d-4e55-9a51-2f0c6a1b9d42", Epoch: 3, Host: "host-b", Node: "node-2",
		Base: &Base{Epoch: 1, Segment: base},
		Segments: []Segment{
			{First: 5, Length: 7, Parent: h('a'), Head: h('d'), Bytes: 300, Sha256: h('e'), State: base.State},
			{First: 7, Length: 9, Parent: h('d'), Head: h('f'), Bytes: 300, Sha256: h('1'),
				State: StateRef{Event: &ev2, HasState: false, Epoch: 3}},
		}}
}

// Manifests come from a store others can write: DecodeManifest never
// panics or reads without bound, and what it accepts is valid and encodes
// back to a manifest that decodes to the same value.
func FuzzDecodeManifest(f *testing.F) {
	good, err := sampleManifest().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	first := &Manifest{Format: ManifestFormat, ActorID: "a", Epoch: 0, Segments: []Segment{}}
	b, _ := first.Encode()
	f.Add(b)
	f.Add([]byte(`{"format":"troupe-archive-manifest-v1","actorID":"a","epoch":1,"base":null,"segments":[],"extra":1}`))
	f.Add([]byte(`{"format":"troupe-archive-manifest-v1","actorID":"a","epoch":1,"base":null,"segments":[]} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("cannot encode an accepted manifest: %v", err)
		}
		m2, err := DecodeManifest(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v -> %+v (%v)", m, m2, err)
		}
		// Every key a manifest leads a reader to stays under its actor's
		// directory.
		for i := range m.Segments {
			if k := SegmentKey(m.ActorID, m.Epoch, &m.Segments[i]); !bytes.HasPrefix([]byte(k), []byte(actorPrefix(m.ActorID))) {
				t.Fatalf("segment key %q outside the actor's directory", k)
			}
		}
	})
}

// The same for index entries.
func FuzzDecodeIndexEntry(f *testing.F) {
	e := IndexEntry{Format: IndexFormat, Namespace: "team-a", Name: "counter", ActorID: "id-1", UID: "u", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	b, err := e.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":"troupe-archive-name-v1","namespace":"a","name":"../b","actorID":"x","created":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeIndexEntry(b)
		if err != nil {
			return
		}
		again, err := e.Encode()
		if err != nil {
			t.Fatalf("cannot encode an accepted entry: %v", err)
		}
		e2, err := DecodeIndexEntry(again)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip: %+v -> %+v (%v)", e, e2, err)
		}
		for _, part := range []string{e.Namespace, e.Name, e.ActorID} {
			if bytes.ContainsAny([]byte(part), "/\\") || part == "." || part == ".." {
				t.Fatalf("entry %+v has a key part that escapes its directory", e)
			}
		}
	})
}

// The manifest's checks, one rule a case.
func TestDecodeManifestRefuses(t *testing.T) {
	cases := map[string]func(m *Manifest){
		"another format":                  func(m *Manifest) { m.Format = "troupe-archive-manifest-v2" },
		"an id with a slash":              func(m *Manifest) { m.ActorID = "a/../b" },
		"a negative epoch":                func(m *Manifest) { m.Epoch = -1 },
		"a base not earlier":              func(m *Manifest) { m.Base.Epoch = 3 },
		"a gap after the base":            func(m *Manifest) { m.Segments[0].First = 6 },
		"a broken link between segments":  func(m *Manifest) { m.Segments[1].Parent = m.Segments[0].Parent },
		"an empty segment":                func(m *Manifest) { m.Segments[1].Length = 7 },
		"too few bytes for its events":    func(m *Manifest) { m.Segments[0].Bytes = 150 },
		"too many bytes":                  func(m *Manifest) { m.Segments[0].Bytes = MaxSegmentBytes + 1 },
		"an upper-case hash":              func(m *Manifest) { m.Segments[0].Head = "A" + m.Segments[0].Head[1:] },
		"a zero parent after seq 0":       func(m *Manifest) { m.Base.Segment.First = 1; m.Base.Segment.Length = 5 },
		"a state after the segment's end": func(m *Manifest) { ev := uint64(9); m.Segments[1].State.Event = &ev },
		"a state of a later epoch":        func(m *Manifest) { m.Segments[1].State.Epoch = 4 },
		"a state no event records":        func(m *Manifest) { m.Segments[1].State = StateRef{HasState: true, Sha256: zeroHex, Epoch: 3} },
		"a digest without a state":        func(m *Manifest) { m.Segments[1].State.Sha256 = zeroHex },
		"an older state than before":      func(m *Manifest) { ev := uint64(1); m.Segments[1].State.Event = &ev },
		"a huge state":                    func(m *Manifest) { m.Segments[0].State.Bytes = MaxStateBytes + 1 },
		"a long host":                     func(m *Manifest) { m.Host = string(bytes.Repeat([]byte("h"), 300)) },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			m := sampleManifest()
			edit(m)
			b, err := jsonMarshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeManifest(b); err == nil {
				t.Fatalf("accepted %s", b)
			}
		})
	}
	b, _ := sampleManifest().Encode()
	if _, err := DecodeManifest(b); err != nil {
		t.Fatalf("the sample itself: %v", err)
	}
}
