package testutil

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer that a writer (a guest's WASI output, a
// process's stderr, a logger) and a test polling it may share.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
