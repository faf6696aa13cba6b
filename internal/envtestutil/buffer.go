package envtestutil

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer that a process under test writes (logs,
// output) while the test reads it: every method takes a lock.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
