package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// testCtx bounds a test's store calls (the machine is loaded: generous).
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newStore starts a versitygw and returns a Store in a fresh bucket.
func newStore(t testing.TB) (*s3test.Server, *objstore.S3) {
	t.Helper()
	srv := s3test.Start(t)
	return srv, srv.Bucket(t, "troupe/archive")
}

// actorChain builds an actor's chain as a host writes it: records as they
// sit in chain.log, and the state after each event.
type actorChain struct {
	recs  []byte
	ends  []int // ends[i]: the end of the record of the i-th event built
	link  chain.Link
	state State
}

// continueFrom starts a chain file on another node: its first event is a
// SegmentStart continuing l.
func continueFrom(l chain.Link, st State) *actorChain {
	c := &actorChain{link: l, state: st}
	c.add(chain.KindSegmentStart, fmt.Sprintf(`{"previousHead":%q,"previousLength":%d,"stateRestored":true}`, l.Head, l.Length))
	return c
}

func (c *actorChain) add(kind chain.Kind, data string) {
	e := chain.Event{Seq: c.link.Length, Parent: c.link.Head, Kind: kind, Op: "op", Time: int64(c.link.Length), Data: []byte(data)}
	e.Hash = chain.ComputeHash(&e)
	c.recs = append(c.recs, chain.EncodeRecord(&e)...)
	c.ends = append(c.ends, len(c.recs))
	c.link = chain.Link{Length: e.Seq + 1, Head: e.Hash}
}

func stateJSON(s State) string {
	if !s.HasState {
		return `"hasState":false`
	}
	sum := sha256.Sum256(s.Data)
	return fmt.Sprintf(`"hasState":true,"stateSha256":%q,"stateBytes":%d`, hex.EncodeToString(sum[:]), len(s.Data))
}

// start records an actor's first events: ActorStart, InitCall, InitResult.
func (c *actorChain) start(init string) {
	c.add(chain.KindActorStart, `{"actorID":"a"}`)
	c.add(chain.KindInitCall, `{"hasState":false}`)
	c.state = State{HasState: true, Data: []byte(init)}
	c.add(chain.KindInitResult, `{"ok":true,`+stateJSON(c.state)+`}`)
}

// tick records a tick that left the state s.
func (c *actorChain) tick(s string) {
	c.state = State{HasState: true, Data: []byte(s)}
	c.add(chain.KindTick, `{"ok":true,`+stateJSON(c.state)+`,"stateChanged":true}`)
}

// log records an event that records no state.
func (c *actorChain) log(msg string) { c.add(chain.KindLog, fmt.Sprintf(`{"message":%q}`, msg)) }

// cut returns the records built since the last cut: a sealed segment.
func (c *actorChain) cut(from *int) []byte {
	seg := c.recs[*from:]
	*from = len(c.recs)
	return seg
}

func mustClaim(t *testing.T, st objstore.Store, id string, epoch int64) *Writer {
	t.Helper()
	w, err := Claim(testCtx(t), st, ClaimOptions{ActorID: id, Epoch: epoch, Host: "host-a", Node: "node-a"})
	if err != nil {
		t.Fatalf("claiming epoch %d: %v", epoch, err)
	}
	return w
}

func mustAppend(t *testing.T, w *Writer, seg []byte, s State) Segment {
	t.Helper()
	got, err := w.Append(testCtx(t), seg, s)
	if err != nil {
		t.Fatalf("appending: %v", err)
	}
	return got
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// segs loads every segment of h.
func segs(t testing.TB, h *History) []Placed {
	t.Helper()
	all, err := h.All(testCtx(t))
	if err != nil {
		t.Fatalf("loading the history's segments: %v", err)
	}
	return all
}

// countingStore counts the pages and segments read through it.
type countingStore struct {
	objstore.Store
	mu                sync.Mutex
	pageGets, segGets int
	pagePuts          int
}

func (c *countingStore) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	c.mu.Lock()
	switch {
	case strings.Contains(key, "/pages/"):
		c.pageGets++
	case strings.Contains(key, "/segments/"):
		c.segGets++
	}
	c.mu.Unlock()
	return c.Store.Get(ctx, key, max)
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64, ifAbsent bool) error {
	c.mu.Lock()
	if strings.Contains(key, "/pages/") {
		c.pagePuts++
	}
	c.mu.Unlock()
	return c.Store.Put(ctx, key, r, size, ifAbsent)
}

// reads returns the pages and segments read since the last call.
func (c *countingStore) reads() (pages, segments int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pages, segments = c.pageGets, c.segGets
	c.pageGets, c.segGets = 0, 0
	return pages, segments
}

// memStore is a Store in memory, to build large archives fast before
// copying what a test needs to the real store.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func newMemStore() *memStore { return &memStore{objs: map[string][]byte{}} }

func (m *memStore) Put(_ context.Context, key string, r io.Reader, _ int64, _ bool) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	return nil
}

func (m *memStore) Get(_ context.Context, key string, max int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	switch {
	case !ok:
		return nil, objstore.ErrNotFound
	case int64(len(b)) > max:
		return nil, objstore.ErrTooLarge
	}
	return b, nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

// setPaging makes writers page every n segments, keeping keep inline,
// for the rest of the test.
func setPaging(t testing.TB, n, keep int) {
	oldN, oldKeep := pageSegments, inlineKeep
	pageSegments, inlineKeep = n, keep
	t.Cleanup(func() { pageSegments, inlineKeep = oldN, oldKeep })
}

// Scan lists like List; the objects have no time (the zero time).
func (m *memStore) Scan(ctx context.Context, prefix, after string, max int) ([]objstore.ObjectInfo, error) {
	keys, _ := m.List(ctx, prefix)
	var out []objstore.ObjectInfo
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if k > after && len(out) < max {
			out = append(out, objstore.ObjectInfo{Key: k, Size: int64(len(m.objs[k]))})
		}
	}
	return out, nil
}
