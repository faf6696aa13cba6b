package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// verifyRotated checks the rotated chain files an actor directory holds
// beside chain.log (with an archive, a host rotates a running actor's
// chain and keeps a tail of it on the node: docs/archive.md): each file
// intact and ending where its name says, each continuing the one before
// it, and chain.log continuing the last. Nothing to do without them.
func verifyRotated(out io.Writer, dir string) error {
	rotated, _, err := actordir.ListRotated(dir)
	if err != nil {
		return &exitError{code: exitUnreadable, err: err}
	}
	if len(rotated) == 0 {
		return nil
	}
	var prev *chain.Link
	var from uint64
	files := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		files = append(files, r.Path)
	}
	files = append(files, actordir.ChainPath(dir))
	for i, path := range files {
		first, ok, err := firstEvent(path)
		if err != nil {
			return &exitError{code: exitUnreadable, err: err}
		}
		if !ok {
			return &exitError{code: exitBroken, err: fmt.Errorf("%s holds no event", path)}
		}
		if i == 0 {
			from = first.Seq
		}
		if prev != nil && (first.Seq != prev.Length || first.Parent != prev.Head) {
			return &exitError{code: exitBroken, err: fmt.Errorf("%s begins at event %d (parent %s), which does not continue %s (ending at %d, head %s)",
				path, first.Seq, first.Parent.Short(), files[i-1], prev.Length, prev.Head.Short())}
		}
		if i == len(rotated) {
			break // chain.log was verified by the caller
		}
		rep, err := chain.VerifyFile(path)
		if err != nil {
			return &exitError{code: exitUnreadable, err: err}
		}
		if !rep.OK() {
			return &exitError{code: exitBroken, err: fmt.Errorf("%s: event %d (offset %d): %s", path, rep.FirstBad, rep.Offset, rep.Reason)}
		}
		if rep.Length != rotated[i].Length {
			return &exitError{code: exitBroken, err: fmt.Errorf("%s ends at %d, not where its name says", path, rep.Length)}
		}
		prev = &chain.Link{Length: rep.Length, Head: rep.Head}
	}
	fmt.Fprintf(out, "%s: %d rotated chain files before it, events %d to %d, intact and linked to it\n",
		filepath.Join(dir, chain.FileName), len(rotated), from, prev.Length-1)
	return nil
}

// errFirst stops a read at the first event.
var errFirst = errors.New("first event read")

// firstEvent reads the first event of the chain file at path.
func firstEvent(path string) (chain.Event, bool, error) {
	var first chain.Event
	found := false
	err := chain.ReadFile(path, func(e chain.Event) error {
		first, found = e, true
		first.Data = nil
		return errFirst
	})
	if err != nil && !errors.Is(err, errFirst) {
		return first, false, fmt.Errorf("reading %s: %w", path, err)
	}
	return first, found, nil
}
