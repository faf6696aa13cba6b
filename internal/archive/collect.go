package archive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// Orphan collection (docs/archive.md#orphans). A writer PUTs a segment's
// objects before the manifest that names them, so a crash, a fence or a
// failed manifest write leaves objects no manifest names: segments and
// states of an upload whose manifest never came, pages a manifest write
// did not follow, a stale epoch's uploads after a later one claimed, an
// upload that raced the deletion of the actor's archive. Readers never see
// them; a Collector removes them.
//
// An object is garbage only when all of these hold:
//   - its key is a segment's, a state's or a page's (actors/<id>/epochs/…):
//     manifests, tombstones and name index entries are never touched;
//   - the store's time of its last PUT is older than the grace, so that an
//     upload whose manifest write is still coming (one upload attempt, at
//     most the host's attempt or flush timeout, 30 s) is never taken;
//   - no manifest of its actor names it (any epoch's, on the history's
//     path or not: an ignored epoch's manifest is kept whole, so what it
//     names is too), and no page object of its epoch names it (a page
//     names its segments, their states, and the page before it). Pages are
//     looked up by the seq range in their keys, so a pass reads the pages
//     that may name its candidates, not every page of the epoch; a page
//     no manifest reaches still counts (an orphan page keeps what it names
//     until it is collected itself, a pass later): that errs on keeping;
//   - or its epoch has no manifest at all: a claim writes the manifest
//     before anything of the epoch, and only DeleteActor removes
//     manifests, so such objects are what an interrupted deletion, or an
//     upload racing it, left;
//   - and it still has that old time right before its DELETE: a writer
//     that PUTs it again (a retry of the same upload) makes it young.
//
// A state object names its event: the segment holding that event in the
// state's epoch is the one that uploaded it (seg.State.Epoch is the
// uploading epoch), and every later segment that carries the state over
// (no state event of its own) continues that one, so looking in the
// manifests and in the epoch's page holding the event finds every state
// that is named.
//
// What the rules cannot tell apart, they keep: a page or manifest that
// cannot be read or decoded makes its epoch's (or actor's) candidates
// undecided for the pass, never garbage.

// DefaultOrphanKeysPerPass bounds the keys one pass lists.
const DefaultOrphanKeysPerPass = 10000

// CollectOptions tune a Collector.
type CollectOptions struct {
	// Grace is how old (the store's time of its last PUT) an object must
	// be before it may be collected; it must be longer than any upload
	// attempt plus the clock skew between the collector and the store.
	Grace time.Duration
	// KeysPerPass bounds the keys a pass lists (0:
	// DefaultOrphanKeysPerPass): a pass goes on from where the last one
	// stopped, and a walk of the whole archive takes as many passes as it
	// needs.
	KeysPerPass int
	// Now is the clock the grace is measured with; nil is time.Now.
	Now func() time.Time
}

// Collector walks the archive's actors, a bounded number of keys a pass,
// and removes the orphaned objects. It keeps its place between passes in
// memory: a new collector starts from the beginning. Not safe for
// concurrent use; one per installation (the manager's leader).
type Collector struct {
	st     objstore.Store
	opts   CollectOptions
	cursor string
}

// NewCollector returns a Collector of st's archive.
func NewCollector(st objstore.Store, o CollectOptions) (*Collector, error) {
	if o.Grace <= 0 {
		return nil, fmt.Errorf("orphan collection: grace %s must be positive", o.Grace)
	}
	if o.KeysPerPass <= 0 {
		o.KeysPerPass = DefaultOrphanKeysPerPass
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Collector{st: st, opts: o}, nil
}

// CollectResult is what a pass did.
type CollectResult struct {
	// Listed is the number of keys the pass listed; Candidates those of
	// them that are segments, states or pages older than the grace.
	Listed, Candidates int
	// Collected objects were removed, with Bytes bytes.
	Collected int
	Bytes     int64
	// Undecided candidates were kept because something they depend on
	// could not be read (the pass's error says what).
	Undecided int
	// From and To are the keys the pass covered; Wrapped says it reached
	// the archive's end (the next pass starts from the beginning).
	From, To string
	Wrapped  bool
	// Removed names the objects collected.
	Removed []string
}

// objectKey is a parsed key of an epoch's object.
type objectKey struct {
	key   string
	actor string
	epoch int64
	kind  string // "segments", "states", "pages"
	// first and length are a segment's or a page's seq range; a state's
	// event is first.
	first, length uint64
}

// parseObjectKey parses actors/<id>/epochs/<epoch>/<kind>/<name>; ok false
// for any other key (manifests among them).
func parseObjectKey(key string) (objectKey, bool) {
	rest, ok := strings.CutPrefix(key, actorsDir)
	if !ok {
		return objectKey{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[1] != strings.Trim(epochsDir, "/") || ValidActorID(parts[0]) != nil {
		return objectKey{}, false
	}
	k := objectKey{key: key, actor: parts[0], kind: parts[3]}
	e, ok := parseNumber(parts[2])
	if !ok || e > MaxEpoch {
		return objectKey{}, false
	}
	k.epoch = int64(e)
	var nums []string
	switch k.kind {
	case "segments":
		nums, ok = splitName(parts[4], ".seg", 3)
	case "pages":
		nums, ok = splitName(parts[4], manifestExt, 3)
	case "states":
		nums, ok = splitName(parts[4], ".state", 2)
	default:
		return objectKey{}, false
	}
	if !ok {
		return objectKey{}, false
	}
	if k.first, ok = parseNumber(nums[0]); !ok {
		return objectKey{}, false
	}
	if k.kind != "states" {
		if k.length, ok = parseNumber(nums[1]); !ok || k.length <= k.first {
			return objectKey{}, false
		}
	}
	return k, true
}

func splitName(name, ext string, n int) ([]string, bool) {
	base, ok := strings.CutSuffix(name, ext)
	if !ok {
		return nil, false
	}
	f := strings.Split(base, "-")
	if len(f) != n || len(f[n-1]) != keyHashDigits {
		return nil, false
	}
	for _, c := range f[n-1] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	return f, true
}

func parseNumber(s string) (uint64, bool) {
	if len(s) != numberDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && pad(n) == s
}

// Pass lists the next KeysPerPass keys of the archive's actors and
// removes those that are orphans. An error that ends the pass early (the
// listing failed) is returned with what was done; errors about single
// actors or objects are joined into the error too, with the pass done for
// the rest.
func (c *Collector) Pass(ctx context.Context) (CollectResult, error) {
	res := CollectResult{From: c.cursor}
	infos, err := c.st.Scan(ctx, actorsDir, c.cursor, c.opts.KeysPerPass)
	if err != nil {
		return res, fmt.Errorf("orphan collection: %w", err)
	}
	res.Listed = len(infos)
	if len(infos) < c.opts.KeysPerPass {
		res.Wrapped, c.cursor = true, ""
	} else {
		c.cursor = infos[len(infos)-1].Key
	}
	res.To = c.cursor
	cutoff := c.opts.Now().Add(-c.opts.Grace)
	type candidate struct {
		objectKey
		objstore.ObjectInfo
	}
	var order []string
	byActor := map[string][]candidate{}
	for _, o := range infos {
		k, ok := parseObjectKey(o.Key)
		if !ok || !o.Modified.Before(cutoff) {
			continue
		}
		res.Candidates++
		if _, seen := byActor[k.actor]; !seen {
			order = append(order, k.actor)
		}
		byActor[k.actor] = append(byActor[k.actor], candidate{k, o})
	}
	var errs passErrors
	decided := 0
	for _, id := range order {
		cands := byActor[id]
		if ctx.Err() != nil {
			break
		}
		v, err := loadActorView(ctx, c.st, id)
		if err != nil {
			decided += len(cands)
			res.Undecided += len(cands)
			errs.add(err)
			continue
		}
		for _, cd := range cands {
			if ctx.Err() != nil {
				break
			}
			decided++
			live, err := v.live(ctx, cd.Key, &cd.objectKey)
			if err != nil {
				res.Undecided++
				errs.add(err)
				continue
			}
			if live {
				continue
			}
			removed, err := c.remove(ctx, cd.Key, cutoff)
			if err != nil {
				res.Undecided++
				errs.add(err)
				continue
			}
			if removed {
				res.Collected++
				res.Bytes += cd.Size
				res.Removed = append(res.Removed, cd.Key)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		// Out of time: the rest waits for the walk's next round.
		res.Undecided += res.Candidates - decided
		errs.add(fmt.Errorf("orphan collection: %d candidates not looked at: %w", res.Candidates-decided, err))
	}
	return res, errs.join()
}

// passErrors keeps the first few errors of a pass and counts the rest, so
// that a store that fails every request makes one readable error, not
// thousands.
type passErrors struct {
	first []error
	more  int
}

func (e *passErrors) add(err error) {
	if len(e.first) < 5 {
		e.first = append(e.first, err)
	} else {
		e.more++
	}
}

func (e *passErrors) join() error {
	if e.more > 0 {
		return errors.Join(append(e.first, fmt.Errorf("and %d more errors", e.more))...)
	}
	return errors.Join(e.first...)
}

// remove deletes key if it is still there with a time before cutoff: a
// writer that PUT it again since the listing (a retry of the upload that
// names it) made it young, and it stays. What is left is the time between
// this look and the DELETE, one round trip.
func (c *Collector) remove(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	now, err := c.st.Scan(ctx, key, "", 1)
	if err != nil {
		return false, fmt.Errorf("orphan collection: %w", err)
	}
	if len(now) == 0 || now[0].Key != key || !now[0].Modified.Before(cutoff) {
		return false, nil
	}
	if err := c.st.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("orphan collection: %w", err)
	}
	return true, nil
}

// actorView is what a pass knows of one actor's archive: the keys its
// manifests name, and its epochs' pages, read as needed.
type actorView struct {
	st        objstore.Store
	id        string
	manifests map[int64]*Manifest
	named     map[string]bool
	// pages are each epoch's page keys (listed once a pass), and loaded
	// the keys each page read names, by the page's key.
	pages  map[int64][]objectKey
	loaded map[string]map[string]bool
}

func loadActorView(ctx context.Context, st objstore.Store, id string) (*actorView, error) {
	epochs, err := manifestEpochs(ctx, st, id)
	if err != nil {
		return nil, fmt.Errorf("orphan collection: %w", err)
	}
	v := &actorView{st: st, id: id, manifests: map[int64]*Manifest{}, named: map[string]bool{},
		pages: map[int64][]objectKey{}, loaded: map[string]map[string]bool{}}
	for _, e := range epochs {
		m, err := loadManifest(ctx, st, id, e)
		if err != nil {
			return nil, fmt.Errorf("orphan collection of %s: %w", id, err)
		}
		v.manifests[e] = m
		for i := range m.Segments {
			v.nameSegment(e, &m.Segments[i])
		}
		if m.Base != nil {
			v.nameSegment(m.Base.Epoch, &m.Base.Segment)
		}
		if m.Page != nil {
			v.named[PageKey(id, e, m.Page)] = true
		}
	}
	return v, nil
}

func (v *actorView) nameSegment(epoch int64, s *Segment) {
	v.named[SegmentKey(v.id, epoch, s)] = true
	if k := StateKey(v.id, s.State.Epoch, &s.State); k != "" {
		v.named[k] = true
	}
}

// live says whether the object key (parsed as k) is named.
func (v *actorView) live(ctx context.Context, key string, k *objectKey) (bool, error) {
	if _, ok := v.manifests[k.epoch]; !ok {
		return false, nil
	}
	if v.named[key] {
		return true, nil
	}
	pages, err := v.epochPages(ctx, k.epoch)
	if err != nil {
		return false, err
	}
	for _, pk := range pages {
		var holds bool
		switch k.kind {
		case "pages":
			holds = pk.first == k.length // the page after it names it as Prev
		default:
			holds = pk.first <= k.first && k.first < pk.length
		}
		if !holds {
			continue
		}
		names, err := v.pageNames(ctx, &pk)
		if err != nil {
			return false, err
		}
		if names[key] {
			return true, nil
		}
	}
	return false, nil
}

// epochPages lists the epoch's page keys, once a pass.
func (v *actorView) epochPages(ctx context.Context, epoch int64) ([]objectKey, error) {
	if p, ok := v.pages[epoch]; ok {
		return p, nil
	}
	keys, err := v.st.List(ctx, epochPrefix(v.id, epoch)+"pages/")
	if err != nil {
		return nil, fmt.Errorf("orphan collection: %w", err)
	}
	out := []objectKey{}
	for _, key := range keys {
		if k, ok := parseObjectKey(key); ok && k.kind == "pages" && k.actor == v.id && k.epoch == epoch {
			out = append(out, k)
		}
	}
	v.pages[epoch] = out
	return out, nil
}

// pageNames reads a page object and returns the keys it names: its
// segments, their states, and the page before it; nil when it is gone
// (collected since the listing: it names nothing). A page that does not
// decode, or is another actor's or epoch's, is an error: what it names
// cannot be known, so nothing it might name is collected.
func (v *actorView) pageNames(ctx context.Context, k *objectKey) (map[string]bool, error) {
	if names, ok := v.loaded[k.key]; ok {
		return names, nil
	}
	b, err := v.st.Get(ctx, k.key, MaxPageBytes)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		v.loaded[k.key] = nil
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("orphan collection: reading page %s: %w", k.key, err)
	}
	p, err := DecodePage(b)
	if err == nil && (p.ActorID != v.id || p.Epoch != k.epoch) {
		err = fmt.Errorf("it holds a page of actor %s, epoch %d", p.ActorID, p.Epoch)
	}
	if err != nil {
		return nil, fmt.Errorf("orphan collection: page %s: %w (kept, with what it may name)", k.key, err)
	}
	names := make(map[string]bool, 2*len(p.Segments)+1)
	for i := range p.Segments {
		s := &p.Segments[i]
		names[SegmentKey(v.id, k.epoch, s)] = true
		if sk := StateKey(v.id, s.State.Epoch, &s.State); sk != "" {
			names[sk] = true
		}
	}
	if p.Prev != nil {
		names[PageKey(v.id, k.epoch, p.Prev)] = true
	}
	v.loaded[k.key] = names
	return names, nil
}
