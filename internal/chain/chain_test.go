package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/fsync"
)

// fakeClock returns a clock that advances one millisecond per reading.
func fakeClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func collect(t *testing.T, c *Chain) []Event {
	t.Helper()
	var out []Event
	if err := c.Events(func(e Event) error {
		e.Data = append([]byte(nil), e.Data...)
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("Events: %v", err)
	}
	return out
}

func readAll(t *testing.T, path string) []Event {
	t.Helper()
	var out []Event
	if err := ReadFile(path, func(e Event) error {
		e.Data = append([]byte(nil), e.Data...)
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	return out
}

// checkLinked verifies a slice of events independently of the scanner.
func checkLinked(t *testing.T, evs []Event) {
	t.Helper()
	for i, e := range evs {
		if got := ComputeHash(&e); got != e.Hash {
			t.Fatalf("event %d: hash %s, recomputed %s", i, e.Hash.Short(), got.Short())
		}
		if i > 0 && (e.Parent != evs[i-1].Hash || e.Seq != evs[i-1].Seq+1) {
			t.Fatalf("event %d does not follow event %d", i, i-1)
		}
	}
}

func TestMemoryChainAppendsLinkedEvents(t *testing.T) {
	c := NewMemory(Options{Now: fakeClock()})
	data := []byte(`{"name":"A"}`)
	h0, err := c.Append(KindRuntimeOperation, "get-env", data)
	if err != nil {
		t.Fatal(err)
	}
	data[2] = 'X' // Append must have copied
	h1, err := c.Append(KindLog, "log", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	head, n := c.Head()
	if head != h1 || n != 2 {
		t.Fatalf("Head = %s,%d want %s,2", head.Short(), n, h1.Short())
	}
	evs := collect(t, c)
	if len(evs) != 2 || evs[0].Hash != h0 || evs[1].Parent != h0 || !evs[0].Parent.IsZero() {
		t.Fatalf("events not linked: %+v", evs)
	}
	if string(evs[0].Data) != `{"name":"A"}` {
		t.Fatalf("data = %q, Append did not copy it", evs[0].Data)
	}
	if evs[0].Time >= evs[1].Time {
		t.Fatalf("times not from the clock: %d %d", evs[0].Time, evs[1].Time)
	}
	checkLinked(t, evs)
}

func TestMemoryChainRetainKeepsTheLastEvents(t *testing.T) {
	c := NewMemory(Options{Retain: 3})
	for i := range 7 {
		if _, err := c.Append(KindCustom, "ev", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, c)
	if len(evs) != 3 {
		t.Fatalf("kept %d events, want 3", len(evs))
	}
	for i, e := range evs {
		if want := fmt.Sprint(4 + i); string(e.Data) != want || e.Seq != uint64(4+i) {
			t.Fatalf("event %d = seq %d data %q, want %s", i, e.Seq, e.Data, want)
		}
	}
	checkLinked(t, evs)
}

func TestAppendRejectsBadInput(t *testing.T) {
	tests := map[string]struct {
		kind Kind
		op   string
		data []byte
	}{
		"empty kind":     {kind: "", op: "x"},
		"long kind":      {kind: Kind(bytes.Repeat([]byte("k"), MaxKindSize+1)), op: "x"},
		"long op":        {kind: KindCustom, op: string(bytes.Repeat([]byte("o"), MaxOpSize+1))},
		"huge data":      {kind: KindCustom, op: "x", data: make([]byte, MaxDataSize+1)},
		"segment start":  {kind: KindSegmentStart, op: "x"},
		"invalid utf8 k": {kind: Kind("\xff"), op: "x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewMemory(Options{})
			if _, err := c.Append(tc.kind, tc.op, tc.data); err == nil {
				t.Fatal("Append succeeded")
			}
			if _, n := c.Head(); n != 0 {
				t.Fatalf("length %d after a rejected append", n)
			}
		})
	}
}

func TestStartSegment(t *testing.T) {
	prev := Hash{1, 2, 3}
	c := NewMemory(Options{})
	if _, err := c.StartSegment(prev, 0, nil); err == nil {
		t.Fatal("a non-zero head with length 0 was accepted")
	}
	h, err := c.StartSegment(prev, 41, []byte(`{"from":"node-a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(KindLog, "log", nil); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, c)
	if evs[0].Seq != 41 || evs[0].Parent != prev || evs[0].Kind != KindSegmentStart || evs[0].Hash != h {
		t.Fatalf("segment start = %+v", evs[0])
	}
	if evs[1].Seq != 42 {
		t.Fatalf("next seq = %d", evs[1].Seq)
	}
	checkLinked(t, evs)
	if _, err := c.StartSegment(prev, 41, nil); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("second StartSegment: %v, want ErrNotEmpty", err)
	}
}

func TestDurableChainRoundTrip(t *testing.T) {
	for _, d := range []Durability{GroupCommit, Sync} {
		t.Run(d.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "actor", FileName)
			c, rec, err := Open(path, Options{Durability: d, Now: fakeClock()})
			if err != nil {
				t.Fatal(err)
			}
			if rec != (Recovery{}) {
				t.Fatalf("new chain recovery = %+v", rec)
			}
			var want []Hash
			for i := range 100 {
				h, err := c.Append(KindCustom, "ev", fmt.Appendf(nil, `{"i":%d}`, i))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, h)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Append(KindCustom, "ev", nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("append after close: %v", err)
			}
			c, rec, err = Open(path, Options{Durability: d, Now: fakeClock()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if rec.Events != 100 || rec.DroppedBytes != 0 {
				t.Fatalf("recovery = %+v", rec)
			}
			if head, n := c.Head(); head != want[99] || n != 100 {
				t.Fatalf("reopened head %s,%d", head.Short(), n)
			}
			if _, err := c.Append(KindLog, "log", []byte("after reopen")); err != nil {
				t.Fatal(err)
			}
			evs := collect(t, c)
			if len(evs) != 101 {
				t.Fatalf("%d events", len(evs))
			}
			for i, h := range want {
				if evs[i].Hash != h {
					t.Fatalf("event %d hash changed", i)
				}
			}
			checkLinked(t, evs)
			rep, err := VerifyFile(path)
			if err != nil || !rep.OK() || rep.Events != 101 {
				t.Fatalf("VerifyFile = %+v, %v", rep, err)
			}
		})
	}
}

// Group commit must reach the file by itself, without Sync or Close.
func TestGroupCommitWritesWithinInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{SyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Append(KindLog, "log", []byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := VerifyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Events == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event never reached the file")
		}
		time.Sleep(time.Millisecond)
	}
}

// Lifecycle events and sync chains are in the file when Append returns.
func TestLifecycleAndSyncAppendsWriteBeforeReturning(t *testing.T) {
	tests := map[string]struct {
		d    Durability
		kind Kind
	}{
		"lifecycle in group commit": {GroupCommit, KindInitResult},
		"log in sync mode":          {Sync, KindLog},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			c, _, err := Open(path, Options{Durability: tc.d, SyncInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if _, err := c.Append(KindLog, "log", []byte("buffered")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Append(tc.kind, "op", []byte("now")); err != nil {
				t.Fatal(err)
			}
			if evs := readAll(t, path); len(evs) != 2 {
				t.Fatalf("file holds %d events right after Append, want 2", len(evs))
			}
		})
	}
}

func TestGroupCommitBuffersOrdinaryEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Append(KindLog, "log", []byte("buffered")); err != nil {
		t.Fatal(err)
	}
	if evs := readAll(t, path); len(evs) != 0 {
		t.Fatalf("an ordinary event was written at once (%d events): group commit is not buffering", len(evs))
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if evs := readAll(t, path); len(evs) != 1 {
		t.Fatalf("after Sync the file holds %d events", len(evs))
	}
}

func TestOpenRefusesASecondWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	c.Close()
	c2, _, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	c2.Close()
}

// Lock holds the file against every other writer before anything is read
// or written, and hands its lock to the Chain that Open makes of it.
func TestLockHoldsTheFileBeforeOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", FileName)
	l, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("Lock wrote the file: %v, %v", st, err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if _, _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while locked: %v, want ErrLocked", err)
	}
	c, _, err := l.Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Open(Options{}); err == nil {
		t.Fatal("a Locked opened twice")
	}
	l.Release() // a no-op once opened: the Chain holds the lock
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while the chain is open: %v, want ErrLocked", err)
	}
	c.Close()
	l2, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	l2.Release()
	if l3, err := Lock(path); err != nil {
		t.Fatalf("Lock after Release: %v", err)
	} else {
		l3.Release()
	}
}

// Durable says how far the last fsync reached: not past what group commit
// buffers nor the events that open a start, up to the end after
// SyncThrough, a lifecycle event or the group commit's own tick.
func TestDurableFollowsTheFsyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The event that opens a start is written at once, not fsynced: the
	// one that ends the start is.
	if _, err := c.Append(KindActorStart, "start", nil); err != nil {
		t.Fatal(err)
	}
	if d := c.Durable(); d != 0 {
		t.Fatalf("after an ActorStart Durable = %d, want 0", d)
	}
	if evs := readAll(t, path); len(evs) != 1 {
		t.Fatalf("an ActorStart was not written at once: the file holds %d events", len(evs))
	}
	if _, err := c.Append(KindInitResult, "init", nil); err != nil {
		t.Fatal(err)
	}
	if d := c.Durable(); d != 2 {
		t.Fatalf("after a lifecycle event Durable = %d, want 2", d)
	}
	for range 3 {
		if _, err := c.Append(KindLog, "log", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if d := c.Durable(); d != 2 {
		t.Fatalf("with three events buffered Durable = %d, want 2", d)
	}
	if err := c.SyncThrough(2); err != nil || c.Durable() != 2 {
		t.Fatalf("SyncThrough of what is durable: %v, Durable %d", err, c.Durable())
	}
	if evs := readAll(t, path); len(evs) != 2 {
		t.Fatalf("SyncThrough(2) wrote buffered events: the file holds %d", len(evs))
	}
	if err := c.SyncThrough(4); err != nil || c.Durable() != 5 {
		t.Fatalf("SyncThrough(4): %v, Durable %d, want 5", err, c.Durable())
	}

	fast, _, err := Open(filepath.Join(t.TempDir(), FileName), Options{SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	for range 5 {
		if _, err := fast.Append(KindLog, "log", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for fast.Durable() != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("group commit never made the events durable: Durable %d", fast.Durable())
		}
		time.Sleep(time.Millisecond)
	}
	if m := NewMemory(Options{}); m.Durable() != 0 || m.SyncThrough(9) != nil {
		t.Fatal("a memory chain has nothing to sync")
	}
}

func TestOpenRejectsForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte("hello, this is not a chain at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a foreign file: %v, want ErrCorrupt", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "hello, this is not a chain at all\n" {
		t.Fatal("Open modified a foreign file")
	}
}

func TestSegmentStartOnDurableChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	prev := Hash{9}
	if _, err := c.StartSegment(prev, 7, []byte(`{"host":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(KindLog, "log", nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, rec, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if head, n := c.Head(); rec.Events != 2 || n != 9 || head.IsZero() {
		t.Fatalf("reopened segment: %+v head %s length %d", rec, head.Short(), n)
	}
	if _, err := c.StartSegment(prev, 7, nil); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("StartSegment on a reopened chain: %v", err)
	}
}

// Many actors append to their own chains at once while readers verify them.
func TestConcurrentChainsAndReaders(t *testing.T) {
	dir := t.TempDir()
	const actors, perActor = 8, 2000
	var wg sync.WaitGroup
	errs := make(chan error, actors*2)
	for a := range actors {
		path := filepath.Join(dir, fmt.Sprint(a), FileName)
		c, _, err := Open(path, Options{SyncInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(done)
			defer c.Close()
			for i := range perActor {
				kind := KindLog
				if i%500 == 0 {
					kind = KindInitCall
				}
				if _, err := c.Append(kind, "op", bytes.Repeat([]byte{byte(i)}, i%300)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			var last uint64
			for {
				select {
				case <-done:
					return
				default:
				}
				rep, err := VerifyFile(path)
				if err != nil {
					errs <- err
					return
				}
				if !rep.OK() {
					errs <- fmt.Errorf("reader saw a bad chain while the writer appends: %+v", rep)
					return
				}
				if rep.Events < last {
					errs <- fmt.Errorf("chain shrank from %d to %d events", last, rep.Events)
					return
				}
				last = rep.Events
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for a := range actors {
		rep, err := VerifyFile(filepath.Join(dir, fmt.Sprint(a), FileName))
		if err != nil || !rep.OK() || rep.Events != perActor {
			t.Fatalf("actor %d: %+v %v", a, rep, err)
		}
	}
}

func TestConcurrentAppendersKeepTheChainLinked(t *testing.T) {
	c := NewMemory(Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				if _, err := c.Append(KindCustom, "ev", fmt.Appendf(nil, "%d-%d", g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	evs := collect(t, c)
	if len(evs) != 2000 {
		t.Fatalf("%d events", len(evs))
	}
	checkLinked(t, evs)
}

func TestFields(t *testing.T) {
	var f Fields
	tests := map[string]struct {
		build func(*Fields) *Fields
		want  string
	}{
		"empty":   {func(f *Fields) *Fields { return f }, `{}`},
		"scalars": {func(f *Fields) *Fields { return f.Str("s", "v").Int("i", -3).Uint("u", 7).Bool("b", true).Null("n") }, `{"s":"v","i":-3,"u":7,"b":true,"n":null}`},
		"float":   {func(f *Fields) *Fields { return f.Float("x", 42.5).Float("y", 1e21) }, `{"x":42.5,"y":1e+21}`},
		"nonfinite": {func(f *Fields) *Fields {
			return f.Float("a", math.NaN()).Float("b", math.Inf(1)).Float("c", math.Inf(-1))
		}, `{"a":"NaN","b":"+Inf","c":"-Inf"}`},
		"escapes": {func(f *Fields) *Fields { return f.Str("k\"", "a\"b\\c\n\x01\t\r é \xff") }, `{"k\"":"a\"b\\c\n\u0001\t\r é \ufffd"}`},
		"blob":    {func(f *Fields) *Fields { return f.Blob("b", []byte{0, 1, 2, 255}) }, `{"b":"AAEC/w=="}`},
		"hex":     {func(f *Fields) *Fields { return f.Hex("h", []byte{0, 1, 0xab, 255}).Hex("e", nil) }, `{"h":"0001abff","e":""}`},
		"json":    {func(f *Fields) *Fields { return f.JSON("j", []byte(`{"a":[1,2]}`)).Str("z", "") }, `{"j":{"a":[1,2]},"z":""}`},
		"secret":  {func(f *Fields) *Fields { return f.Str("name", "DB_PASSWORD").Secret("value") }, `{"name":"DB_PASSWORD","value":{"redacted":true}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(tc.build(f.Reset()).Data())
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("not valid JSON: %s", got)
			}
		})
	}
}

func TestFieldsDataThenMoreFields(t *testing.T) {
	var f Fields
	if got := string(f.Str("a", "1").Data()); got != `{"a":"1"}` {
		t.Fatal(got)
	}
	if got := string(f.Int("b", 2).Data()); got != `{"a":"1","b":2}` {
		t.Fatal(got)
	}
}

func TestFieldsReuseDoesNotAllocate(t *testing.T) {
	var f Fields
	build := func() {
		f.Reset().Str("name", "GREETING").Str("value", "hello \"world\"").Int("n", 12345).Float("v", 3.25).Bool("ok", true).Secret("s").Blob("b", []byte("xyz")).Hex("h", []byte("xyz")).Data()
	}
	build()
	if a := testing.AllocsPerRun(100, build); a != 0 {
		t.Fatalf("reused Fields allocated %.1f times per object", a)
	}
}

func TestMemoryAppendDoesNotAllocate(t *testing.T) {
	c := NewMemory(Options{Retain: 16})
	data := bytes.Repeat([]byte("x"), 100)
	var f Fields
	if a := testing.AllocsPerRun(1000, func() {
		c.Append(KindRuntimeOperation, "get-env", f.Reset().Str("name", "A").Blob("value", data).Data())
	}); a != 0 {
		t.Fatalf("Append on a bounded memory chain allocated %.1f times", a)
	}
}

// Secrets go in only as the fact of their redaction, whatever the value.
func TestSecretNeverReachesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-very-secret"
	env := map[string]struct {
		v      string
		secret bool
	}{"DB_PASSWORD": {secret, true}, "GREETING": {"hi", false}}
	var f Fields
	for _, name := range []string{"DB_PASSWORD", "GREETING"} {
		f.Reset().Str("name", name)
		if e := env[name]; e.secret {
			f.Secret("value")
		} else {
			f.Str("value", e.v)
		}
		if _, err := c.Append(KindRuntimeOperation, "get-env", f.Data()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the secret value is in the chain file")
	}
	if !bytes.Contains(raw, []byte(`"value":{"redacted":true}`)) || !bytes.Contains(raw, []byte(`"value":"hi"`)) {
		t.Fatal("the redaction marker or the plain value is missing")
	}
}

func TestMemoryChainKeepsEveryEventsData(t *testing.T) {
	c := NewMemory(Options{})
	want := make([][]byte, 0, 600)
	for i := range 600 {
		d := bytes.Repeat([]byte{byte(i)}, (i*137)%40000) // some above the chunk's inline limit
		want = append(want, d)
		if _, err := c.Append(KindCustom, "ev", d); err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, c)
	for i, e := range evs {
		if !bytes.Equal(e.Data, want[i]) {
			t.Fatalf("event %d: %d bytes, want %d", i, len(e.Data), len(want[i]))
		}
	}
	checkLinked(t, evs)
}

// After a failed write the chain refuses appends instead of extending a
// file whose end it no longer knows.
func TestWriteFailureIsSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(KindLog, "log", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	c.f.Close() // the disk goes away under the chain
	if _, err := c.Append(KindInitCall, "init", nil); err == nil {
		t.Fatal("a lifecycle append to a dead file succeeded")
	}
	if _, err := c.Append(KindLog, "log", nil); err == nil {
		t.Fatal("an append after a failed write succeeded")
	}
	if err := c.Sync(); err == nil {
		t.Fatal("Sync after a failed write succeeded")
	}
	if err := c.Close(); err == nil {
		t.Fatal("Close hid the failed write")
	}
}

func TestParseDurability(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Durability
		err  bool
	}{
		"default":      {"", GroupCommit, false},
		"group-commit": {"group-commit", GroupCommit, false},
		"sync":         {"sync", Sync, false},
		"unknown":      {"fsync-always", 0, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDurability(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseDurability(%q) = %v, %v", tc.in, got, err)
			}
			if err == nil && got.String() != map[Durability]string{GroupCommit: "group-commit", Sync: "sync"}[got] {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

// A new chain file's header and directory entry are made durable by its
// first fsync, once, not by syncs of their own; a caller that synced the
// directory since (Write.DirSynced) spares the chain its own. The events
// that open a start wait for the one that ends it, and a Sync or Close
// that finds everything synced makes no fsync. Not parallel: the
// fsync hook is the process's.
func TestNewChainSyncsItsDirectoryOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dirSynced bool
		want      []fsync.Kind // InitResult's; Close, with nothing new, makes none
	}{
		{"alone", false, []fsync.Kind{fsync.KindData, fsync.KindDir}},
		{"directory synced by the caller", true, []fsync.Kind{fsync.KindData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			var got []fsync.Kind
			defer fsync.SetHook(func(k fsync.Kind, path string) {
				if strings.HasPrefix(path, dir) {
					mu.Lock()
					got = append(got, k)
					mu.Unlock()
				}
			})()
			opts := Options{SyncInterval: time.Hour}
			if tc.dirSynced {
				opts.BeforeWrite = func(w Write) error {
					w.DirSynced()
					return nil
				}
			}
			c, _, err := Open(filepath.Join(dir, FileName), opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []Kind{KindActorStart, KindRestart, KindInitCall} {
				if _, err := c.Append(k, "x", nil); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			if len(got) != 0 {
				t.Errorf("opening a new chain and the events that open a start synced %v", got)
			}
			mu.Unlock()
			if _, err := c.Append(KindInitResult, "x", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("syncs %v, want %v", got, tc.want)
			}
		})
	}
}
