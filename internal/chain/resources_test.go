package chain

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Close must have released the file and its lock when it returns, even while
// a group-commit fsync runs outside the chain's lock: the host reopens an
// actor's chain at once when it reruns the actor in the same directory.
func TestReopenRightAfterCloseUnderGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	const rounds, perRound = 200, 5
	data := bytes.Repeat([]byte("y"), 200)
	var want uint64
	for round := range rounds {
		c, rec, err := Open(path, Options{SyncInterval: time.Millisecond})
		if err != nil {
			t.Fatalf("round %d: reopening right after Close: %v", round, err)
		}
		t.Cleanup(func() { c.Close() })
		if rec.Events != want || rec.DroppedBytes != 0 {
			t.Fatalf("round %d: recovery %+v, want %d events", round, rec, want)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		for range perRound {
			if _, err := c.Append(KindLog, "log", data); err != nil {
				t.Fatal(err)
			}
		}
		want += perRound
		// Close as soon as the group commit has written the records: its
		// fsync starts right after, outside the lock, so Close lands in it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			cur, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Size() > st.Size() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the group commit never wrote", round)
			}
			runtime.Gosched()
		}
		if err := c.Close(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.Events != want {
		t.Fatalf("VerifyFile = %+v, %v; want %d events", rep, err, want)
	}
}
