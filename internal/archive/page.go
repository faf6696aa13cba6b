package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// PageFormat names version 1 of a page object.
const PageFormat = "troupe-archive-page-v1"

const (
	// MaxPageBytes bounds a page object a reader accepts.
	MaxPageBytes = 4 << 20
	// MaxPageSegments bounds the segments one page lists (a writer puts
	// pageSegments in each; a reader accepts more, so that the writer's
	// figure can change without a new format).
	MaxPageSegments = 4096
	// MaxPages bounds an epoch's pages: with the writer's 256 segments a
	// page, 268 million segments, 85 years of a segment every 10 s.
	MaxPages = 1 << 20
)

// The writer's paging, unexported variables so that tests can page
// often: once the manifest lists pageSegments+inlineKeep segments inline,
// the oldest pageSegments go into a page object and the manifest names
// the page instead. Keeping inlineKeep (at least 1) inline keeps the tip,
// and usually the segment holding the latest state, in the manifest, so a
// restore reads no page.
var (
	pageSegments = 256
	inlineKeep   = 16
)

// PageRef is an account of a page object: an immutable run of an
// epoch's segments, in order, which names the page before it (Prev). The
// manifest names the epoch's newest page; its Prev, and theirs, name the
// rest, so that the manifest stays the same size however many pages the
// epoch has, and a reader loads only the pages it walks back through.
type PageRef struct {
	// First is the first segment's first seq, Length the last one's
	// length; Parent the first segment's parent, Head the last one's head.
	First  uint64 `json:"first"`
	Length uint64 `json:"length"`
	Parent string `json:"parent"`
	Head   string `json:"head"`
	// Segments is how many segments the page lists; Pages how many pages
	// the epoch has up to this one (1: it is the first, with no Prev);
	// Total how many segments they list, this one's included.
	Segments int   `json:"segments"`
	Pages    int   `json:"pages"`
	Total    int64 `json:"total"`
	// Bytes and Sha256 are the page object's size and SHA-256.
	Bytes  int64  `json:"bytes"`
	Sha256 string `json:"sha256"`
}

// Page is a page object: segments of one epoch, each continuing the one
// before, the first continuing the end of Prev (the epoch's page before
// this one; nil for its first page, whose first segment continues the
// manifest's Base).
type Page struct {
	Format   string    `json:"format"`
	ActorID  string    `json:"actorID"`
	Epoch    int64     `json:"epoch"`
	Prev     *PageRef  `json:"prev"`
	Segments []Segment `json:"segments"`
}

// PageKey is where a page lives.
func PageKey(id string, epoch int64, r *PageRef) string {
	return fmt.Sprintf("%spages/%s-%s-%s.json", epochPrefix(id, epoch), pad(r.First), pad(r.Length), shortHex(r.Sha256))
}

// Encode returns the page's bytes.
func (p *Page) Encode() ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding page: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodePage parses and checks a page object: the format, every
// segment's bounds and shape, and that they follow one another.
func DecodePage(b []byte) (*Page, error) {
	var p Page
	if err := decodeStrict(b, MaxPageBytes, &p); err != nil {
		return nil, fmt.Errorf("decoding page: %w", err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Page) validate() error {
	if p.Format != PageFormat {
		return fmt.Errorf("page format %q: this build reads %q", p.Format, PageFormat)
	}
	if err := ValidActorID(p.ActorID); err != nil {
		return fmt.Errorf("page: %w", err)
	}
	if err := validEpoch(p.Epoch); err != nil {
		return fmt.Errorf("page: %w", err)
	}
	if n := len(p.Segments); n == 0 || n > MaxPageSegments {
		return fmt.Errorf("page of epoch %d: %d segments (1 to %d)", p.Epoch, n, MaxPageSegments)
	}
	if err := validRun(p.Segments, nil, p.Epoch); err != nil {
		return fmt.Errorf("page of epoch %d: %w", p.Epoch, err)
	}
	if r := p.Prev; r != nil {
		if err := r.validate(); err != nil {
			return fmt.Errorf("page of epoch %d: prev: %w", p.Epoch, err)
		}
		if s := &p.Segments[0]; s.First != r.Length || s.Parent != r.Head {
			return fmt.Errorf("page of epoch %d starts at seq %d after parent %.12s, but the page before ends at %d with head %.12s",
				p.Epoch, s.First, s.Parent, r.Length, r.Head)
		}
		if r.Pages >= MaxPages || r.Total+int64(len(p.Segments)) > int64(MaxPages)*MaxPageSegments {
			return fmt.Errorf("page of epoch %d: more than %d pages", p.Epoch, MaxPages)
		}
	}
	return nil
}

// ref returns the PageRef of p's encoding b.
func (p *Page) ref(b []byte) PageRef {
	first, last := &p.Segments[0], &p.Segments[len(p.Segments)-1]
	sum := sha256.Sum256(b)
	r := PageRef{First: first.First, Length: last.Length, Parent: first.Parent, Head: last.Head,
		Segments: len(p.Segments), Pages: 1, Total: int64(len(p.Segments)), Bytes: int64(len(b)), Sha256: hex.EncodeToString(sum[:])}
	if p.Prev != nil {
		r.Pages, r.Total = p.Prev.Pages+1, p.Prev.Total+r.Total
	}
	return r
}

func (r *PageRef) validate() error {
	if r.Length <= r.First {
		return fmt.Errorf("length %d not after first seq %d", r.Length, r.First)
	}
	for what, h := range map[string]string{"parent": r.Parent, "head": r.Head, "sha256": r.Sha256} {
		if err := validHex32(what, h); err != nil {
			return err
		}
	}
	if (r.Parent == zeroHex) != (r.First == 0) {
		return fmt.Errorf("first seq %d with parent %.12s: a zero parent goes with seq 0 only", r.First, r.Parent)
	}
	if r.Segments < 1 || r.Segments > MaxPageSegments || uint64(r.Segments) > r.Length-r.First {
		return fmt.Errorf("%d segments for %d events (1 to %d, at least one event a segment)", r.Segments, r.Length-r.First, MaxPageSegments)
	}
	if r.Pages < 1 || r.Pages > MaxPages || r.Total < int64(r.Segments) || r.Total > int64(r.Pages)*MaxPageSegments ||
		(r.Pages == 1) != (r.Total == int64(r.Segments)) || r.Total-int64(r.Segments) < int64(r.Pages-1) {
		return fmt.Errorf("page %d of its epoch with %d segments, %d in all: not a count pages can have", r.Pages, r.Segments, r.Total)
	}
	if r.Bytes < 1 || r.Bytes > MaxPageBytes {
		return fmt.Errorf("a page of %d bytes (at most %d)", r.Bytes, MaxPageBytes)
	}
	return nil
}

// loadPage downloads epoch's page r and checks it against r: size,
// SHA-256, owner, and that its segments (and the pages before it) span
// exactly what r says.
func loadPage(ctx context.Context, st objstore.Store, id string, epoch int64, r *PageRef) (*Page, error) {
	key := PageKey(id, epoch, r)
	b, err := getChecked(ctx, st, fmt.Sprintf("epoch %d's page", epoch), key, r.Bytes, r.Sha256)
	if err != nil {
		return nil, err
	}
	p, err := DecodePage(b)
	if err != nil {
		return nil, broken("page %s: %v", key, err)
	}
	if p.ActorID != id || p.Epoch != epoch {
		return nil, broken("page %s holds segments of actor %s, epoch %d", key, p.ActorID, p.Epoch)
	}
	if got := p.ref(b); got != *r {
		return nil, broken("page %s spans seqs %d-%d in %d segments (parent %.12s, head %.12s, page %d, %d segments in all), its ref says %d-%d in %d (parent %.12s, head %.12s, page %d, %d in all)",
			key, got.First, got.Length-1, got.Segments, got.Parent, got.Head, got.Pages, got.Total, r.First, r.Length-1, r.Segments, r.Parent, r.Head, r.Pages, r.Total)
	}
	return p, nil
}

// putPage uploads a page of segs following prev and returns its ref.
func putPage(ctx context.Context, st objstore.Store, id string, epoch int64, prev *PageRef, segs []Segment) (PageRef, error) {
	p := &Page{Format: PageFormat, ActorID: id, Epoch: epoch, Prev: prev, Segments: segs}
	b, err := p.Encode()
	if err != nil {
		return PageRef{}, err
	}
	if len(b) > MaxPageBytes {
		return PageRef{}, fmt.Errorf("a page of %d bytes, more than %d", len(b), MaxPageBytes)
	}
	r := p.ref(b)
	if err := st.Put(ctx, PageKey(id, epoch, &r), bytes.NewReader(b), int64(len(b)), false); err != nil {
		return PageRef{}, fmt.Errorf("writing a page of epoch %d: %w", epoch, err)
	}
	return r, nil
}
