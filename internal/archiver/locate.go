package archiver

import (
	"errors"
	"fmt"

	"github.com/troupe-dev/troupe/internal/chain"
)

// errFound stops a scan of the chain file.
var errFound = errors.New("found")

// locate returns the offset in the chain file at path where the record
// continuing tip starts: after the event tip ends at, or at a record
// (a SegmentStart beginning the file) linked to tip. A nil tip (the
// archive holds nothing yet) is the first record. It reads no further
// than it must; an error says the file does not continue the archive.
func locate(path string, tip *chain.Link) (int64, error) {
	off := int64(len(chain.Magic))
	if tip == nil {
		return off, nil
	}
	found := int64(-1)
	first := true
	var firstSeq, lastSeq uint64
	err := chain.ReadFile(path, func(e chain.Event) error {
		if first {
			firstSeq, first = e.Seq, false
		}
		lastSeq = e.Seq
		if e.Seq == tip.Length && e.Parent == tip.Head {
			found = off
			return errFound
		}
		off += int64(chain.RecordSize(e.Kind, e.Op, len(e.Data)))
		if e.Seq+1 == tip.Length && e.Hash == tip.Head {
			found = off
			return errFound
		}
		return nil
	})
	if found >= 0 {
		return found, nil
	}
	if err != nil {
		return 0, fmt.Errorf("finding the archive's head in %s: %w", path, err)
	}
	if first {
		return 0, fmt.Errorf("the archive ends at event %d (head %s), and the chain file %s holds no event", tip.Length, tip.Head.Short(), path)
	}
	return 0, fmt.Errorf("the archive ends at event %d (head %s), which the chain file %s (events %d to %d) does not continue",
		tip.Length, tip.Head.Short(), path, firstSeq, lastSeq)
}
