package actordir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLayout(t *testing.T) {
	root := t.TempDir()
	if got := Path(root, "ns", "name", "id"); got != filepath.Join(root, "ns", "name", "id") {
		t.Fatalf("Path = %s", got)
	}
	if Newest(root, "ns", "name") != "" {
		t.Fatal("Newest of nothing is not empty")
	}
	// Three actor ids of one Actor; the chain written last wins, a
	// directory without a chain never does.
	base := time.Now().Add(-time.Hour)
	for i, id := range []string{"old", "new", "middle"} {
		dir := Path(root, "ns", "name", id)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ChainPath(dir), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration([]int{1, 3, 2}[i]) * time.Minute)
		if err := os.Chtimes(ChainPath(dir), at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(Path(root, "ns", "name", "no-chain"), 0o750); err != nil {
		t.Fatal(err)
	}
	if got := Newest(root, "ns", "name"); got != "new" {
		t.Fatalf("Newest = %q, want new", got)
	}

	dir := Path(root, "ns", "name", "new")
	// The states saved with the chain go aside with it; a slot that was
	// never written is no error.
	if err := WriteStateSlot(dir, 0, SavedState{Seq: 3}); err != nil {
		t.Fatal(err)
	}
	if err := WriteLegacyState(dir, State{}); err != nil {
		t.Fatal(err)
	}
	if !HasSavedState(dir) {
		t.Fatal("HasSavedState is false with two state files")
	}
	now := time.Unix(1700000000, 0)
	name, err := MoveChainAside(dir, now)
	if err != nil || name != "chain.log.1700000000.old" {
		t.Fatalf("MoveChainAside = %q, %v", name, err)
	}
	for _, f := range []string{name, "state.a.1700000000.old", "state.1700000000.old"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if HasSavedState(dir) {
		t.Fatal("a saved state stayed beside the new segment")
	}
	if _, err := os.Stat(ChainPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the chain is still in place: %v", err)
	}
	if _, err := MoveChainAside(dir, now); err == nil {
		t.Fatal("moving a missing chain aside succeeded")
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(dir, "f", []byte(content), true); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "f"))
		if string(got) != content {
			t.Fatalf("content %q, want %q", got, content)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing"), "f", nil, true); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
