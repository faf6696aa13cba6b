package chain

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Rotate moves the events to another file and goes on in a new one that
// begins with a SegmentStart continuing them: the two files verify on
// their own and one after the other, the chain reopens from the new file
// alone, and the lock passes to the new file.
func TestRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	rotated := path + ".rotated"
	c, _, err := Open(path, Options{Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := c.Append(KindTick, "tick", []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	head, length := c.Head()
	size := c.Size()
	rot, err := c.Rotate(rotated, []byte(`{"rotated":{"file":"chain.log.rotated"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if rot.End != (Link{Length: length, Head: head}) || rot.Size != size {
		t.Fatalf("rotation %+v, the chain ended at %d/%s (%d bytes)", rot, length, head.Short(), size)
	}
	if h, l := c.Head(); h != rot.Head || l != length+1 || c.Durable() != length+1 {
		t.Fatalf("after the rotation the chain is at %d/%s (durable %d), want %d/%s", l, h.Short(), c.Durable(), length+1, rot.Head.Short())
	}
	if n := c.Size(); n != fileSize(t, path) || n >= size {
		t.Fatalf("Size %d, the new file is %d bytes, the old %d", n, fileSize(t, path), size)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("locking the new file while the chain has it: %v", err)
	}
	if _, err := c.Append(KindTick, "tick", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	old, cur := readAll(t, rotated), readAll(t, path)
	if len(old) != 5 || fileSize(t, rotated) != size {
		t.Fatalf("the rotated file holds %d events, %d bytes", len(old), fileSize(t, rotated))
	}
	if cur[0].Kind != KindSegmentStart || cur[0].Seq != length || cur[0].Parent != head || len(cur) != 2 {
		t.Fatalf("the new file begins with %s at %d (parent %s), %d events", cur[0].Kind, cur[0].Seq, cur[0].Parent.Short(), len(cur))
	}
	checkLinked(t, append(old, cur...))
	if _, err := VerifyFile(path); err != nil {
		t.Fatal(err)
	}
	c2, _, err := Open(path, Options{Floor: Floor{Length: length, Source: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if h, l := c2.Head(); h != cur[1].Hash || l != length+2 {
		t.Fatalf("reopened at %d/%s", l, h.Short())
	}
}

// Appends that race with a rotation are neither lost nor written twice:
// each lands in the old file or the new one, in order.
func TestRotateWhileAppending(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	c, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(KindTick, "tick", nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 500 {
			if _, err := c.Append(KindTick, "tick", []byte("x")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var files []string
	for i := range 5 {
		r := filepath.Join(dir, FileName+"."+string(rune('a'+i)))
		if _, err := c.Rotate(r, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		files = append(files, r)
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var all []Event
	for _, f := range append(files, path) {
		all = append(all, readAll(t, f)...)
	}
	checkLinked(t, all)
	if n := len(all); n != 1+500+5 || all[0].Seq != 0 {
		t.Fatalf("%d events across the files, want %d", n, 506)
	}
}

// A crash at any step of a rotation leaves the chain file whole; what it
// left beside it, RecoverRotation removes, and nothing else.
func TestRecoverRotation(t *testing.T) {
	for name, tc := range map[string]struct {
		// crash sets the directory up as a crash at that step left it.
		crash       func(t *testing.T, path, rotated string)
		wantRemoved int
		wantFirst   Kind // the first event of chain.log after recovery
	}{
		"before the new file": {crash: func(*testing.T, string, string) {}, wantFirst: KindActorStart},
		"new file written, not linked": {crash: func(t *testing.T, path, _ string) {
			mustOK(t, os.WriteFile(path+NextSuffix, append([]byte(nil), magicBytes...), 0o640))
		}, wantRemoved: 1, wantFirst: KindActorStart},
		"linked, not renamed": {crash: func(t *testing.T, path, rotated string) {
			mustOK(t, os.WriteFile(path+NextSuffix, append([]byte(nil), magicBytes...), 0o640))
			mustOK(t, os.Link(path, rotated))
		}, wantRemoved: 2, wantFirst: KindActorStart},
		"renamed": {crash: func(t *testing.T, path, rotated string) {
			c, _, err := Open(path, Options{})
			mustOK(t, err)
			_, err = c.Rotate(rotated, []byte(`{}`))
			mustOK(t, err)
			mustOK(t, c.Close())
		}, wantFirst: KindSegmentStart},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			rotated := path + ".00000000000000000002"
			c, _, err := Open(path, Options{})
			mustOK(t, err)
			_, err = c.Append(KindActorStart, "start", nil)
			mustOK(t, err)
			_, err = c.Append(KindTick, "tick", nil)
			mustOK(t, err)
			mustOK(t, c.Close())
			tc.crash(t, path, rotated)

			l, err := Lock(path)
			mustOK(t, err)
			removed, err := RecoverRotation(path, []string{rotated})
			mustOK(t, err)
			if len(removed) != tc.wantRemoved {
				t.Fatalf("removed %v, want %d names", removed, tc.wantRemoved)
			}
			c, _, err = l.Open(Options{})
			mustOK(t, err)
			defer c.Close()
			evs := collect(t, c)
			if evs[0].Kind != tc.wantFirst {
				t.Fatalf("chain.log begins with %s, want %s", evs[0].Kind, tc.wantFirst)
			}
			if _, l := c.Head(); l != 2 && l != 3 {
				t.Fatalf("the chain is %d long", l)
			}
			if _, err := os.Stat(path + NextSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s is still there: %v", path+NextSuffix, err)
			}
			if _, err := os.Stat(rotated); (tc.wantFirst == KindSegmentStart) != (err == nil) {
				t.Fatalf("the rotated file: %v", err)
			}
		})
	}
}

// Rotate refuses what it cannot do honestly.
func TestRotateRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	c, _, err := Open(path, Options{})
	mustOK(t, err)
	defer c.Close()
	if _, err := c.Rotate(path+".x", nil); err == nil {
		t.Fatal("rotated a chain with no event")
	}
	_, err = c.Append(KindTick, "tick", nil)
	mustOK(t, err)
	for _, to := range []string{path, filepath.Join(t.TempDir(), "elsewhere")} {
		if _, err := c.Rotate(to, nil); err == nil {
			t.Fatalf("rotated to %s", to)
		}
	}
	if _, err := NewMemory(Options{}).Rotate(path+".x", nil); err == nil {
		t.Fatal("rotated a memory chain")
	}
}
