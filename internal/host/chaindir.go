package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
)

// errFound stops a chain scan early.
var errFound = errors.New("found")

// parseHead reads a status head; "" is the zero hash.
func parseHead(s string) (chain.Hash, error) {
	if s == "" {
		return chain.Hash{}, nil
	}
	h, err := chain.ParseHash(s)
	if err != nil {
		return h, fmt.Errorf("the chain head in status: %w", err)
	}
	return h, nil
}

// continuation says how the chain in dir continues the head status
// records (PROTOCOL.md#chain-continuity):
//   - no head in status: the local chain, if any, goes on;
//   - the local chain contains the status head (at its position): it goes
//     on; the status may lag behind it (heads are published at a bounded
//     rate, and a host can die between two writes);
//   - else the actor ran elsewhere since this chain was written (or there
//     is none): the old chain is moved aside, with the states saved with it
//     (actordir.MoveChainAside), and a new segment starts, linked to the
//     status head, without the actor's state (the engine's SegmentStart and
//     the host's StateLost say so);
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
	link := &actorhost.ChainLink{Head: head, Length: uint64(st.Length), Node: st.Node}
	path := actordir.ChainPath(dir)
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
	if !found && err != nil && errors.Is(err, errFound) && events == 1 {
		// chain.log begins after the head: it was rotated since
		// (actordir.RotatedChainPath), and the head is in a rotated file
		// that chain.log continues, unless the tail removed it.
		if ok, rerr := rotatedHolds(dir, want, head); rerr != nil {
			return nil, "", rerr
		} else if ok {
			return nil, "", nil
		}
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
	old, err := actordir.MoveChainAside(dir, now)
	if err != nil {
		return nil, "", err
	}
	return link, old, nil
}

// rotatedHolds reports whether a rotated chain file of dir holds the
// event seq with hash head. chain.log continues the newest rotated file
// (its SegmentStart is that file's end), and each rotated file the one
// before it, so a head one of them holds is one the local chain goes on
// from.
func rotatedHolds(dir string, seq uint64, head chain.Hash) (bool, error) {
	rotated, _, err := actordir.ListRotated(dir)
	if err != nil {
		return false, err
	}
	for _, r := range rotated {
		if r.Length <= seq {
			continue
		}
		found := false
		err := chain.ReadFile(r.Path, func(e chain.Event) error {
			if e.Seq == seq {
				found = e.Hash == head
				return errFound
			}
			if e.Seq > seq {
				return errFound
			}
			return nil
		})
		if err != nil && !errors.Is(err, errFound) {
			return false, nil // unreadable: the caller moves the chain aside
		}
		return found, nil
	}
	return false, nil
}

// localHead reads the head of the chain in dir without opening it for
// writing; ok is false when there is no readable chain.
func localHead(dir string) (head chain.Hash, length uint64, ok bool) {
	rep, err := chain.VerifyFile(actordir.ChainPath(dir))
	if err != nil || rep.Events == 0 {
		return head, 0, false
	}
	return rep.Head, rep.Length, true
}
