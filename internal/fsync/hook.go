package fsync

import (
	"os"
	"sync/atomic"
)

// Kind says which of the two syncs a Hook saw.
type Kind int

const (
	// KindData is Data: a file's contents (fdatasync on Linux).
	KindData Kind = iota
	// KindDir is Dir: a directory's entries (fsync of the directory).
	KindDir
)

// String names the kind as the syscall strace shows.
func (k Kind) String() string {
	if k == KindDir {
		return "fsync(dir)"
	}
	return "fdatasync"
}

// hook is what SetHook installed; nil (the normal case) costs one atomic
// load per sync, nothing next to the sync itself.
var hook atomic.Pointer[func(Kind, string)]

// SetHook makes every later Data and Dir call fn with its kind and the
// path it syncs, before the sync, until the returned func restores the
// previous hook. It is a seam for tests that count the syncs of a path
// (a start must cost a bounded number of them); fn runs on the syncing
// goroutine and must be safe for concurrent use. Tests that run in
// parallel share the hook: filter on the path.
func SetHook(fn func(kind Kind, path string)) (restore func()) {
	prev := hook.Swap(&fn)
	return func() { hook.Store(prev) }
}

func observe(k Kind, path string) {
	if h := hook.Load(); h != nil {
		(*h)(k, path)
	}
}

// dataOf observes f's sync and returns it, for Data.
func dataOf(f *os.File) *os.File {
	observe(KindData, f.Name())
	return f
}
