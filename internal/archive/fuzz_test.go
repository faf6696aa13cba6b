package archive

import (
	"bytes"
	"reflect"
	"strings"
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

// pagedManifest is sampleManifest with a page (its second) between the
// base and the inline segments.
func pagedManifest() *Manifest {
	m := sampleManifest()
	h := func(c byte) string { return string(bytes.Repeat([]byte{c}, 64)) }
	m.Page = &PageRef{First: 6, Length: 7, Parent: h('7'), Head: h('d'), Segments: 1, Pages: 2, Total: 2, Bytes: 900, Sha256: h('8')}
	m.Segments = m.Segments[1:]
	return m
}

// samplePage is a valid page of epoch 3 following another.
func samplePage() *Page {
	m := sampleManifest()
	return &Page{Format: PageFormat, ActorID: m.ActorID, Epoch: 3, Segments: m.Segments,
		Prev: &PageRef{First: 0, Length: 5, Parent: zeroHex, Head: m.Base.Segment.Head, Segments: 1, Pages: 1, Total: 1, Bytes: 700, Sha256: m.Base.Segment.Sha256}}
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
	paged, err := pagedManifest().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(paged)
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
		if m.Page != nil {
			if k := PageKey(m.ActorID, m.Epoch, m.Page); !bytes.HasPrefix([]byte(k), []byte(actorPrefix(m.ActorID))) {
				t.Fatalf("page key %q outside the actor's directory", k)
			}
		}
	})
}

// Pages come from the same store: the same for DecodePage.
func FuzzDecodePage(f *testing.F) {
	good, err := samplePage().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	p := samplePage()
	p.Prev = nil
	p.Segments = p.Segments[:1]
	p.Segments[0].First, p.Segments[0].Length, p.Segments[0].Parent, p.Segments[0].Bytes = 0, 3, zeroHex, 400
	if b, err := p.Encode(); err == nil {
		f.Add(b)
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"format":"troupe-archive-page-v1","actorID":"a","epoch":1,"prev":null,"segments":[]}`))
	f.Add([]byte(`{"format":"troupe-archive-page-v1","actorID":"a","epoch":1,"prev":null,"segments":[],"x":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePage(b)
		if err != nil {
			return
		}
		if err := p.validate(); err != nil {
			t.Fatalf("accepted an invalid page: %v", err)
		}
		again, err := p.Encode()
		if err != nil {
			t.Fatalf("cannot encode an accepted page: %v", err)
		}
		p2, err := DecodePage(again)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip: %+v -> %+v (%v)", p, p2, err)
		}
		if r := p.ref(again); r.validate() != nil && len(again) <= MaxPageBytes {
			t.Fatalf("an accepted page's ref %+v does not validate: %v", r, r.validate())
		}
	})
}

// The page's and the page ref's checks, one rule a case.
func TestDecodePageRefuses(t *testing.T) {
	cases := map[string]func(p *Page){
		"another format":           func(p *Page) { p.Format = "troupe-archive-page-v2" },
		"no segment":               func(p *Page) { p.Segments = nil },
		"a gap after prev":         func(p *Page) { p.Prev.Length = 4 },
		"a broken link in it":      func(p *Page) { p.Segments[1].Parent = p.Segments[0].Parent },
		"prev claims no pages":     func(p *Page) { p.Prev.Pages = 0 },
		"prev counts too few":      func(p *Page) { p.Prev.Pages = 2 },
		"prev with a bad hash":     func(p *Page) { p.Prev.Sha256 = "x" },
		"prev of a huge size":      func(p *Page) { p.Prev.Bytes = MaxPageBytes + 1 },
		"prev with more segments":  func(p *Page) { p.Prev.Segments, p.Prev.Total = 6, 6 },
		"prev at the most pages":   func(p *Page) { p.Prev.Pages, p.Prev.Total = MaxPages, MaxPages },
		"a state of a later epoch": func(p *Page) { p.Segments[1].State.Epoch = 4 },
		"too many segments": func(p *Page) {
			for len(p.Segments) <= MaxPageSegments {
				p.Segments = append(p.Segments, p.Segments[0])
			}
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			p := samplePage()
			edit(p)
			b, err := jsonMarshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodePage(b); err == nil {
				t.Fatalf("accepted %.300s", b)
			}
		})
	}
	b, _ := samplePage().Encode()
	if _, err := DecodePage(b); err != nil {
		t.Fatalf("the sample itself: %v", err)
	}
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
	paged := map[string]func(m *Manifest){
		"a page but nothing inline":       func(m *Manifest) { m.Segments = nil },
		"inline not after the page":       func(m *Manifest) { m.Segments[0].Parent = m.Base.Segment.Head },
		"a second page at the base":       func(m *Manifest) { m.Page.First = 5 },
		"a first page not after the base": func(m *Manifest) { m.Page.Pages, m.Page.Total, m.Page.Parent = 1, 2, m.Segments[0].Head },
		"a page with no segment":          func(m *Manifest) { m.Page.Segments = 0 },
		"more segments than events":       func(m *Manifest) { m.Page.Segments, m.Page.Total = 3, 4 },
		"a total below its own":           func(m *Manifest) { m.Page.Total = 1 },
		"too many pages":                  func(m *Manifest) { m.Page.Pages, m.Page.Total = MaxPages+1, MaxPages+2 },
		"a huge page":                     func(m *Manifest) { m.Page.Bytes = MaxPageBytes + 1 },
		"a page ending before it starts":  func(m *Manifest) { m.Page.Length = 5 },
		"a page with an upper-case head":  func(m *Manifest) { m.Page.Head = "A" + m.Page.Head[1:] },
	}
	for name, edit := range paged {
		cases["paged: "+name] = func(m *Manifest) {
			*m = *pagedManifest()
			edit(m)
		}
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
	for _, m := range []*Manifest{sampleManifest(), pagedManifest()} {
		b, _ := m.Encode()
		if _, err := DecodeManifest(b); err != nil {
			t.Fatalf("the sample itself: %v", err)
		}
	}
}

// FuzzParseObjectKey: whatever key a listing gives, parsing never panics,
// and a key it takes is exactly the key the layout computes from what it
// parsed (so the collector never takes for a layout key one that a
// writer could not have written).
func FuzzParseObjectKey(f *testing.F) {
	seg := samplePage().Segments[0]
	f.Add(SegmentKey("a-1", 3, &seg))
	f.Add(StateKey("a-1", 3, &seg.State))
	f.Add(PageKey("a-1", 3, &PageRef{First: 0, Length: 9, Sha256: zeroHex}))
	f.Add(ManifestKey("a-1", 3))
	f.Add("actors/a-1/epochs/00000000000000000003/segments/x-y-z.seg")
	f.Fuzz(func(t *testing.T, key string) {
		k, ok := parseObjectKey(key)
		if !ok {
			return
		}
		hash := key[strings.LastIndex(key, "-")+1 : strings.LastIndex(key, ".")]
		var again string
		switch k.kind {
		case "segments":
			again = SegmentKey(k.actor, k.epoch, &Segment{First: k.first, Length: k.length, Sha256: hash})
		case "states":
			ev := k.first
			again = StateKey(k.actor, k.epoch, &StateRef{Event: &ev, HasState: true, Sha256: hash})
		case "pages":
			again = PageKey(k.actor, k.epoch, &PageRef{First: k.first, Length: k.length, Sha256: hash})
		default:
			t.Fatalf("%q parsed as kind %q", key, k.kind)
		}
		if again != key || k.key != key {
			t.Fatalf("%q parsed as %+v, which the layout writes as %q", key, k, again)
		}
	})
}
