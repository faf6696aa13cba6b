package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/troupe-dev/troupe/internal/limits"
)

// ManifestFormat names version 1 of the manifest; a change to its meaning
// is a new version, which a reader of this one refuses.
const ManifestFormat = "troupe-archive-manifest-v1"

const (
	// MaxManifestBytes bounds a manifest a reader accepts (a hostile or
	// damaged store must not make it read without end).
	MaxManifestBytes = 16 << 20
	// MaxSegments bounds the segments one epoch's manifest lists.
	MaxSegments = 50_000
	// MaxSegmentBytes bounds a sealed segment.
	MaxSegmentBytes = 64 << 20
	// MaxStateBytes bounds a state snapshot: the largest state an actor
	// may have.
	MaxStateBytes = limits.DefaultMaxStateBytes
	// minRecordBytes is the smallest record a chain file holds (frame and
	// the smallest body, docs/chain-format.md).
	minRecordBytes = 8 + 93
	maxTextBytes   = 253
)

// Manifest is one epoch's account of the history: the segment of an
// earlier epoch it continues (Base), and the segments its host uploaded,
// in order. The highest epoch's manifest is the history's end; following
// Base epoch by epoch gives all of it.
type Manifest struct {
	Format  string `json:"format"`
	ActorID string `json:"actorID"`
	Epoch   int64  `json:"epoch"`
	// Host and Node say who wrote it (for people; never trusted).
	Host string `json:"host,omitempty"`
	Node string `json:"node,omitempty"`
	// Base is the last segment this epoch accepted from an earlier one,
	// copied whole, fixed when the epoch claimed the actor; nil when the
	// history had no segment then (it starts in this epoch).
	Base *Base `json:"base"`
	// Page names the newest of the immutable page objects that hold this
	// epoch's earlier segments (each page names the one before it; the
	// first page continues Base). Absent until the epoch has more
	// segments than a manifest keeps inline.
	Page *PageRef `json:"page,omitempty"`
	// Segments are this epoch's newest segments, each continuing the one
	// before (the first continues the last page, or Base). A manifest with
	// pages lists at least one: the tip is always inline.
	Segments []Segment `json:"segments"`
}

// Base names the segment an epoch continues.
type Base struct {
	Epoch   int64   `json:"epoch"`
	Segment Segment `json:"segment"`
}

// Segment describes a sealed segment: the record bytes of a chain file
// between two record boundaries (no file header), and the state that
// belongs to its end.
type Segment struct {
	// First is its first event's seq, Length its last event's seq + 1.
	First  uint64 `json:"first"`
	Length uint64 `json:"length"`
	// Parent is its first event's parent hash, Head its last event's hash
	// (64 lowercase hex digits).
	Parent string `json:"parent"`
	Head   string `json:"head"`
	// Bytes and Sha256 are the object's size and SHA-256.
	Bytes  int64  `json:"bytes"`
	Sha256 string `json:"sha256"`
	// State is the actor's state as of the segment's end.
	State StateRef `json:"state"`
}

// StateRef is the actor's state as of a segment's end: the one the last
// state-recording event at or before the segment's end records
// (chain.RecordedState).
type StateRef struct {
	// Event is that event's seq; nil when no event of the history records
	// a state yet.
	Event *uint64 `json:"event,omitempty"`
	// HasState is false when the actor has no state (then there is no
	// object). Sha256 and Bytes describe the state object's bytes.
	HasState bool   `json:"hasState"`
	Sha256   string `json:"sha256,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	// Epoch is the epoch whose directory holds the object: a state that did
	// not change since an earlier segment is not uploaded again.
	Epoch int64 `json:"epoch"`
}

// Encode returns the manifest's bytes.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeManifest parses and checks a manifest: the format, every field's
// bounds and shape, and that its segments follow one another (each
// continues the one before, the first continues Base). What it cannot
// check alone (that the objects exist and hold what it says, that Base is
// in the earlier epoch's manifest) Verify checks.
func DecodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := decodeStrict(b, MaxManifestBytes, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// decodeStrict decodes one JSON value with no unknown field and nothing
// after it.
func decodeStrict(b []byte, max int, v any) error {
	if len(b) > max {
		return fmt.Errorf("%d bytes, more than %d", len(b), max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

func (m *Manifest) validate() error {
	if m.Format != ManifestFormat {
		return fmt.Errorf("manifest format %q: this build reads %q", m.Format, ManifestFormat)
	}
	if err := ValidActorID(m.ActorID); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := validEpoch(m.Epoch); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	for what, s := range map[string]string{"host": m.Host, "node": m.Node} {
		if len(s) > maxTextBytes || !utf8.ValidString(s) {
			return fmt.Errorf("manifest of epoch %d: %s is not a short UTF-8 string", m.Epoch, what)
		}
	}
	if len(m.Segments) > MaxSegments {
		return fmt.Errorf("manifest of epoch %d: %d segments, more than %d", m.Epoch, len(m.Segments), MaxSegments)
	}
	if m.Page != nil && len(m.Segments) == 0 {
		return fmt.Errorf("manifest of epoch %d: a page but no segment inline", m.Epoch)
	}
	var prev *chainEnd
	if m.Base != nil {
		if m.Base.Epoch < 0 || m.Base.Epoch >= m.Epoch {
			return fmt.Errorf("manifest of epoch %d: base epoch %d is not an earlier one", m.Epoch, m.Base.Epoch)
		}
		if err := m.Base.Segment.validate(m.Base.Epoch); err != nil {
			return fmt.Errorf("manifest of epoch %d: base: %w", m.Epoch, err)
		}
		prev = &chainEnd{m.Base.Segment.Length, m.Base.Segment.Head}
	}
	if r := m.Page; r != nil {
		if err := r.validate(); err != nil {
			return fmt.Errorf("manifest of epoch %d: page: %w", m.Epoch, err)
		}
		if r.Pages == 1 && prev != nil && (r.First != prev.length || r.Parent != prev.head) {
			return fmt.Errorf("manifest of epoch %d: its first page starts at seq %d after parent %.12s, but the base ends at %d with head %.12s",
				m.Epoch, r.First, r.Parent, prev.length, prev.head)
		}
		if r.Pages > 1 && prev != nil && r.First <= prev.length {
			return fmt.Errorf("manifest of epoch %d: page %d starts at seq %d, not after the base's end (%d)", m.Epoch, r.Pages, r.First, prev.length)
		}
		prev = &chainEnd{r.Length, r.Head}
	}
	var prevSeg *Segment
	if m.Page == nil && m.Base != nil {
		prevSeg = &m.Base.Segment
	}
	if prev != nil && len(m.Segments) > 0 && (m.Segments[0].First != prev.length || m.Segments[0].Parent != prev.head) {
		return fmt.Errorf("manifest of epoch %d: segment 0 starts at seq %d after parent %.12s, but what comes before ends at %d with head %.12s",
			m.Epoch, m.Segments[0].First, m.Segments[0].Parent, prev.length, prev.head)
	}
	if err := validRun(m.Segments, prevSeg, m.Epoch); err != nil {
		return fmt.Errorf("manifest of epoch %d: %w", m.Epoch, err)
	}
	return nil
}

// chainEnd is where a run of segments ends.
type chainEnd struct {
	length uint64
	head   string
}

// validRun checks segs: each valid, each continuing the one before (the
// first continuing prev, when not nil), states never older than before.
func validRun(segs []Segment, prev *Segment, epoch int64) error {
	for i := range segs {
		s := &segs[i]
		if err := s.validate(epoch); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		if prev != nil {
			if s.First != prev.Length || s.Parent != prev.Head {
				return fmt.Errorf("segment %d starts at seq %d after parent %.12s, but the segment before ends at %d with head %.12s",
					i, s.First, s.Parent, prev.Length, prev.Head)
			}
			if prev.State.Event != nil && (s.State.Event == nil || *s.State.Event < *prev.State.Event) {
				return fmt.Errorf("segment %d's state is older than the segment before's", i)
			}
		}
		prev = s
	}
	return nil
}

func (s *Segment) validate(epoch int64) error {
	if s.Length <= s.First {
		return fmt.Errorf("length %d not after first seq %d", s.Length, s.First)
	}
	for what, h := range map[string]string{"parent": s.Parent, "head": s.Head, "sha256": s.Sha256} {
		if err := validHex32(what, h); err != nil {
			return err
		}
	}
	if (s.Parent == zeroHex) != (s.First == 0) {
		return fmt.Errorf("first seq %d with parent %.12s: a zero parent goes with seq 0 only", s.First, s.Parent)
	}
	if s.Bytes < minRecordBytes || s.Bytes > MaxSegmentBytes || uint64(s.Bytes)/minRecordBytes < s.Length-s.First {
		return fmt.Errorf("%d bytes for %d events (at least %d bytes an event, at most %d bytes)", s.Bytes, s.Length-s.First, minRecordBytes, MaxSegmentBytes)
	}
	st := &s.State
	if st.Epoch < 0 || st.Epoch > epoch {
		return fmt.Errorf("state in epoch %d's directory, not this one's (%d) or an earlier one's", st.Epoch, epoch)
	}
	switch {
	case st.Event != nil && *st.Event >= s.Length:
		return fmt.Errorf("state recorded by event %d, after the segment's end (%d)", *st.Event, s.Length)
	case st.Event == nil && st.HasState:
		return errors.New("a state that no event records")
	case st.HasState:
		if err := validHex32("state sha256", st.Sha256); err != nil {
			return err
		}
		if st.Bytes < 0 || st.Bytes > MaxStateBytes {
			return fmt.Errorf("state of %d bytes (at most %d)", st.Bytes, MaxStateBytes)
		}
	case st.Sha256 != "" || st.Bytes != 0:
		return errors.New("no state, but a digest or size for it")
	}
	return nil
}

var zeroHex = fmt.Sprintf("%064d", 0)
