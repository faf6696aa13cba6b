package host

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
)

// errFound stops a chain scan early.
var errFound = errors.New("found")

// parseHead reads a status head; "" is the zero hash.
func parseHead(s string) (chain.Hash, error) {
	var h chain.Hash
	if s == "" {
		return h, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("chain head %q is not 64 hex digits", s)
	}
	copy(h[:], b)
	return h, nil
}

// continuation says how the chain in dir continues the head status
// records (PROTOCOL.md#chain-continuity):
//   - no head in status: the local chain, if any, goes on;
//   - the local chain contains the status head (at its position): it goes
//     on; the status may lag behind it (heads are published at a bounded
//     rate, and a host can die between two writes);
//   - else the actor ran elsewhere since this chain was written (or there
//     is none): the old chain is moved aside as chain.log.<unix>.old and a
//     new segment starts, linked to the status head;
//   - a chain of a format version this build does not read is an error.
//
// It returns the link to start the new segment with, or nil, and the name
// the old chain was moved to, if any.
func continuation(dir string, st *v1alpha1.ChainStatus, now time.Time) (*actorhost.ChainLink, string, error) {
	if st == nil || st.Head == "" || st.Length <= 0 {
		return nil, "", nil
	}
	head, err := parseHead(st.Head)
	if err != nil {
		return nil, "", err
	}
	link := &actorhost.ChainLink{Head: head, Length: uint64(st.Length)}
	path := filepath.Join(dir, chain.FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return link, "", nil
	} else if err != nil {
		return nil, "", fmt.Errorf("reading the actor's chain: %w", err)
	}
	want := link.Length - 1
	found, events := false, 0
	err = chain.ReadFile(path, func(e chain.Event) error {
		events++
		if e.Seq == want {
			found = e.Hash == head
			return errFound
		}
		if e.Seq > want {
			return errFound
		}
		return nil
	})
	if found {
		return nil, "", nil
	}
	if errors.Is(err, chain.ErrUnknownVersion) {
		// Written by a newer host: neither moved aside nor continued; the
		// error names the file and the versions this host reads.
		return nil, "", err
	}
	if events == 0 && err == nil {
		// An empty chain file: the segment starts in it.
		return link, "", nil
	}
	// A chain that does not contain the head, or a damaged one: keep it
	// for inspection, start afresh from the head the cluster knows.
	old := fmt.Sprintf("%s.%d.old", path, now.Unix())
	if err := os.Rename(path, old); err != nil {
		return nil, "", fmt.Errorf("moving the actor's old chain aside: %w", err)
	}
	return link, filepath.Base(old), nil
}

// runRecord is what a host remembers in an actor's directory about how its
// last run there ended, so that a restarted host does not start again an
// epoch that already ended (the controller restarts with a new epoch).
type runRecord struct {
	Epoch      int64  `json:"epoch"`
	Generation int64  `json:"generation"`
	Phase      string `json:"phase"`
	Reason     string `json:"reason,omitempty"`
}

const runRecordFile = "host-run.json"

func writeRunRecord(dir string, r runRecord) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, runRecordFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, runRecordFile))
}

func readRunRecord(dir string) (runRecord, bool) {
	var r runRecord
	data, err := os.ReadFile(filepath.Join(dir, runRecordFile))
	if err != nil || json.Unmarshal(data, &r) != nil {
		return r, false
	}
	return r, true
}

// localHead reads the head of the chain in dir without opening it for
// writing; ok is false when there is no readable chain.
func localHead(dir string) (head chain.Hash, length uint64, ok bool) {
	rep, err := chain.VerifyFile(filepath.Join(dir, chain.FileName))
	if err != nil || rep.Events == 0 {
		return head, 0, false
	}
	return rep.Head, rep.Length, true
}
