package actorhost

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// rollup is the process's memory as /proc/self/smaps_rollup sums it, in
// bytes. RSS counts a page shared by several mappings once per mapping;
// PSS divides it among them, and Private_Dirty is what the process alone
// wrote: the honest per-actor figures when actors share pages.
type rollup struct {
	rss, pss, privateDirty, privateClean, sharedClean uint64
}

func readRollup(t testing.TB) rollup {
	t.Helper()
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		t.Skip("no /proc/self/smaps_rollup here")
	}
	defer f.Close()
	var r rollup
	fields := map[string]*uint64{"Rss:": &r.rss, "Pss:": &r.pss, "Private_Dirty:": &r.privateDirty,
		"Private_Clean:": &r.privateClean, "Shared_Clean:": &r.sharedClean}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[2] == "kB" {
			if p, ok := fields[f[0]]; ok {
				n, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				*p = n << 10
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// settledRollup collects garbage, returns it to the OS, and reads the
// rollup and the live heap.
func settledRollup(t testing.TB) (rollup, uint64) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return readRollup(t), ms.HeapAlloc
}

// perActor is what n idle actors added to the process, per actor.
type perActor struct {
	heap, rss, pss, privateDirty float64
	// shared is the accounted part of their linear memory still shared
	// with the image (MemoryUsage.LinearShared).
	shared float64
}

func (p perActor) String() string {
	b := func(f float64) string { return textutil.FormatBytes(uint64(max(f, 0))) }
	return fmt.Sprintf("heap %s, RSS %s, PSS %s, Private_Dirty %s (linear shared with the image %s)",
		b(p.heap), b(p.rss), b(p.pss), b(p.privateDirty), b(p.shared))
}

// measureIdleActors starts n idle actors of wasm with durable chains in a
// new engine (keepData: the module's data segments left to wazero, the
// baseline) and returns what each added to the process once settled.
func measureIdleActors(t *testing.T, wasm []byte, n int, keepData bool) perActor {
	t.Helper()
	ctx := context.Background()
	e, err := NewEngine(ctx, EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test",
		MemoryBudget: NewMemoryBudget(1 << 45), keepDataSegments: keepData})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	c, err := e.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if keepData && c.image != nil {
		t.Fatal("keepDataSegments, but an image")
	}
	dir := t.TempDir()
	cfg := func(i int) ActorConfig {
		return ActorConfig{Name: "idle", Component: c, Dir: fmt.Sprintf("%s/%d", dir, i), InitialState: []byte(`{"count":0}`)}
	}
	// One actor first: what the component shares (its image, code) is
	// not a cost per actor.
	first, err := e.Start(ctx, cfg(-1))
	if err != nil {
		t.Fatal(err)
	}
	actors := []*Actor{first}
	defer func() {
		for _, a := range actors {
			_ = a.Stop(ctx, "test")
		}
	}()
	r0, h0 := settledRollup(t)
	for i := range n {
		a, err := e.Start(ctx, cfg(i))
		if a != nil {
			actors = append(actors, a)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	st := e.RefreshMemory()
	r1, h1 := settledRollup(t)
	d := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	return perActor{heap: d(h0, h1), rss: d(r0.rss, r1.rss), pss: d(r0.pss, r1.pss),
		privateDirty: d(r0.privateDirty, r1.privateDirty), shared: float64(st.LinearShared) / float64(st.Actors)}
}

// TestIdleMemoryPerActor measures what an idle actor with a durable chain
// costs the process, with each module's data segments as a shared initial
// memory image and without (the baseline, same run), in rounds that
// alternate the two; it logs each round and the medians. Under
// TROUPE_TEST_LONG=1 it starts 1,000 Go actors (examples/hello) and
// 10,000 small ones (counter.wat); otherwise 50 Go actors and 400 small.
//
// It holds the Go actor's PSS with the image to at most 60% of the
// baseline's: the pages the guest never writes are shared.
func TestIdleMemoryPerActor(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("starts dozens of Go actors, and reads the process's memory")
	}
	goActors, small, rounds := 50, 400, 5
	if longTests() {
		goActors, small, rounds = 1000, 10000, 5
	}
	if s := os.Getenv("TROUPE_TEST_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	tests := []struct {
		name string
		wasm func(t *testing.T) []byte
		n    int
		// imaged: the module gets an image (a baseline to compare with).
		imaged bool
	}{
		{"go hello", func(t *testing.T) []byte { return testutil.BuildExample(t, "hello") }, goActors, true},
		// Too small an image to be worth it (minImageBytes): the
		// engine leaves its segments to wazero, as before.
		{"small wat", func(t *testing.T) []byte { return readWasm(t, "counter") }, small, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wasm := tc.wasm(t)
			var image, base []perActor
			for range rounds {
				if tc.imaged {
					base = append(base, measureIdleActors(t, wasm, tc.n, true))
					t.Logf("%d actors, segments kept (baseline): %s", tc.n, base[len(base)-1])
				}
				image = append(image, measureIdleActors(t, wasm, tc.n, false))
				t.Logf("%d actors, as the engine runs them:  %s", tc.n, image[len(image)-1])
			}
			mi := medianPerActor(image)
			t.Logf("median of %d, %d actors: %s", rounds, tc.n, mi)
			if !tc.imaged {
				return
			}
			mb := medianPerActor(base)
			t.Logf("median of %d, %d actors, baseline: %s", rounds, tc.n, mb)
			if mi.pss > 0.6*mb.pss {
				t.Errorf("a Go actor's PSS is %.0f%% of the baseline's with the image; want at most 60%%", 100*mi.pss/mb.pss)
			}
		})
	}
}

// medianPerActor is each figure's median over the rounds.
func medianPerActor(ps []perActor) perActor {
	med := func(get func(perActor) float64) float64 {
		v := make([]float64, len(ps))
		for i, p := range ps {
			v[i] = get(p)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return perActor{
		heap:         med(func(p perActor) float64 { return p.heap }),
		rss:          med(func(p perActor) float64 { return p.rss }),
		pss:          med(func(p perActor) float64 { return p.pss }),
		privateDirty: med(func(p perActor) float64 { return p.privateDirty }),
		shared:       med(func(p perActor) float64 { return p.shared }),
	}
}

// TestImageInstancesAreIsolated: an actor of a module with an initial
// memory image sees the image's bytes, and a write to them is its own: the
// other actors of the module, and the next one started, still see the
// image. The same with the segments left to wazero (the baseline).
func TestImageInstancesAreIsolated(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepDataSegments=%v", keep), func(t *testing.T) {
			ctx := context.Background()
			e, err := NewEngine(ctx, EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", keepDataSegments: keep})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(ctx)
			c := compile(t, e, "image")
			if got := c.image != nil; got == keep {
				t.Fatalf("image %v with keepDataSegments %v", got, keep)
			}
			if c.image != nil && runtime.GOOS == "linux" && !c.image.shared() {
				t.Fatal("the image is not shared (memfd) on Linux")
			}
			read := func(a *Actor, off, n uint32) string {
				t.Helper()
				b, ok := a.mem.Read(off, n)
				if !ok {
					t.Fatalf("reading %d bytes at %d", n, off)
				}
				return string(b)
			}
			check := func(a *Actor, first string) {
				t.Helper()
				if got := read(a, 0, 5); got != first {
					t.Errorf("%s: %q at 0, want %q", a.Name(), got, first)
				}
				if got := read(a, 4*65536-8, 8); got != "lastpage" {
					t.Errorf("%s: %q at the image's end, want lastpage", a.Name(), got)
				}
				if got := read(a, 4*65536, 16); got != string(make([]byte, 16)) {
					t.Errorf("%s: %q past the image, want zeros", a.Name(), got)
				}
			}
			a := start(t, e, ActorConfig{Name: "a", Component: c})
			b := start(t, e, ActorConfig{Name: "b", Component: c})
			check(a, "first")
			check(b, "first")
			if _, err := a.Call(ctx, "poke", 'X'); err != nil {
				t.Fatal(err)
			}
			check(a, "Xirst")
			check(b, "first")
			check(start(t, e, ActorConfig{Name: "c", Component: c}), "first")
			if _, err := b.Call(ctx, "poke", 'Y'); err != nil {
				t.Fatal(err)
			}
			check(a, "Xirst")
			check(b, "Yirst")
		})
	}
}

// TestImageLinearMemories: the allocator lays the image under the memory
// whatever the backing (mapped on Linux, copied by the heap's), the
// instances' writes stay their own, and the accounting tells the pages
// still shared from the ones written.
func TestImageLinearMemories(t *testing.T) {
	const pages = 4
	content := make([]byte, pages*wasmPageSize)
	for i := range content {
		content[i] = byte(i*7 + 1)
	}
	img := newMemImage(bytes.Clone(content), "test")
	defer img.close()
	tests := map[string]func(limit, capBytes uint64, l *memoryLimiter) *linearMemory{
		"platform": allocateLinearMemory,
		"heap":     newHeapMemory,
	}
	for name, alloc := range tests {
		t.Run(name, func(t *testing.T) {
			var mems []*linearMemory
			var bufs [][]byte
			for range 2 {
				l := newMemoryLimiter(8, nil, nil)
				l.image = img
				lm := alloc(l.limit, 0, l)
				l.mem.Store(lm)
				defer lm.backing.Free()
				buf := lm.backing.Reallocate(6 * wasmPageSize)
				if !bytes.Equal(buf[:len(content)], content) || !allZeros(buf[len(content):]) {
					t.Fatal("the memory is not the image followed by zeros")
				}
				mems, bufs = append(mems, lm), append(bufs, buf)
			}
			bufs[0][10] ^= 0xff
			bufs[0][3*wasmPageSize] ^= 0xff
			if bufs[1][10] != content[10] || bufs[1][3*wasmPageSize] != content[3*wasmPageSize] {
				t.Fatal("one memory's write shows in the other")
			}
			grown := mems[1].backing.Reallocate(8 * wasmPageSize)
			if !bytes.Equal(grown[:len(content)], content) {
				t.Fatal("growth changed the image's bytes")
			}
			res, shared := mems[0].resident()
			if _, mapped := mems[0].backing.(*mmapMemory); mapped && img.shared() {
				// Both touched pages of memory 0 are its own now; all the
				// rest it read is shared.
				page := uint64(os.Getpagesize())
				if shared == 0 || res < shared+2*page {
					t.Fatalf("resident %d, shared %d: want the 2 written pages private and the read ones shared", res, shared)
				}
			} else if shared != 0 {
				t.Fatalf("a copied image reports %d bytes shared", shared)
			}
		})
	}
}

func allZeros(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

// TestDataOutOfBoundsStillFails: a module whose data segment ends past its
// memory gets no image, and fails at instantiation as it always did.
func TestDataOutOfBoundsStillFails(t *testing.T) {
	for _, keep := range []bool{false, true} {
		ctx := context.Background()
		e, err := NewEngine(ctx, EngineOptions{NoDiskCache: true, SystemInfo: fixedSystemInfo{}, Version: "test", keepDataSegments: keep})
		if err != nil {
			t.Fatal(err)
		}
		c := compile(t, e, "data_oob")
		if c.image != nil {
			t.Fatal("an out-of-bounds segment made an image")
		}
		a, err := e.Start(ctx, ActorConfig{Name: "oob", Component: c})
		if err == nil || !strings.Contains(err.Error(), "out of bounds") {
			t.Errorf("keepDataSegments %v: starting a module with a segment out of bounds: %v", keep, err)
		}
		if a != nil {
			_ = a.Stop(ctx, "test")
		}
		_ = e.Close(ctx)
	}
}

// TestGoModuleGetsAnImage: a Go module (examples/hello) qualifies: its
// compiled module has no data segment left for wazero.
func TestGoModuleGetsAnImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/hello with the Go toolchain")
	}
	e, _ := newTestEngine(t)
	c, err := e.Compile(context.Background(), testutil.BuildExample(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if c.image == nil || c.shape.dataSegments != 0 {
		t.Fatalf("image %v, %d data segments left", c.image != nil, c.shape.dataSegments)
	}
	t.Logf("examples/hello: a %s image of its %d-page initial memory", textutil.FormatBytes(c.image.size), c.memMin)
}
