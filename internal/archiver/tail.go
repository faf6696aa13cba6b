package archiver

import (
	"fmt"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
)

// The local tail (Options.LocalTail): a running actor's chain.log is
// rotated at an archive point once it holds half the tail
// (Shipper.seal, actorhost.Actor.RotatePoint), and the rotated files the
// archive holds in full are removed, oldest first, while the actor's
// chain files together pass the tail (prune). A rotated file is removed
// only once an Append that ends at or past its end returned: the
// segment and state objects and then the manifest naming them were
// written, so the archive's history holds every event of the file.

// prune removes the rotated chain files of the shipper's actor that the
// archive holds, oldest first, while its chain files take more than the
// tail. Called with upMu held, after an upload.
func (s *Shipper) prune() {
	tail := s.ar.opts.LocalTail
	if tail <= 0 {
		return
	}
	rotated, _, err := actordir.ListRotated(s.dir)
	if err != nil {
		s.log.Error(err, "listing the actor's rotated chain files")
		return
	}
	_, total := s.src.Progress()
	for _, r := range rotated {
		total += r.Size
	}
	archived := s.archived.Load()
	for _, r := range rotated {
		if total <= tail || r.Length > archived {
			return
		}
		if err := actordir.RemoveRotated(r); err != nil {
			s.log.Error(err, "removing an archived chain file")
			return
		}
		total -= r.Size
		s.ar.metrics.pruned.Add(float64(r.Size))
		s.log.V(1).Info("removed a rotated chain file the archive holds", "file", r.Path, "length", r.Length, "bytes", r.Size)
	}
}

// rotatedPoints finds tip in the rotated chain files of dir and returns
// the segments from it to the end of the last of them, one a file, each
// with the state saved beside its file: what a run that rotated its chain
// did not upload before it stopped. A nil tip (the archive holds nothing
// yet) is the start of the oldest rotated file. nil when no rotated file
// holds tip.
func rotatedPoints(dir string, tip *chain.Link) ([]point, error) {
	rotated, _, err := actordir.ListRotated(dir)
	if err != nil {
		return nil, err
	}
	for i, r := range rotated {
		if tip != nil && r.Length < tip.Length {
			continue
		}
		off, err := locate(r.Path, tip)
		if err != nil {
			continue
		}
		var pts []point
		for j, r := range rotated[i:] {
			from := int64(len(chain.Magic))
			if j == 0 {
				from = off
			}
			if from >= r.Size {
				continue // the archive holds it all
			}
			p, err := rotatedPoint(r)
			if err != nil {
				return nil, err
			}
			pts = append(pts, point{p: p, from: from})
		}
		if pts == nil {
			return nil, nil
		}
		return pts, nil
	}
	return nil, nil
}

// rotatedPoint is the archive point at the end of a rotated file, with
// the state saved beside it.
func rotatedPoint(r actordir.RotatedChain) (actorhost.ArchivePoint, error) {
	p := actorhost.ArchivePoint{Path: r.Path, Rotated: true, Offset: int64(len(chain.Magic))}
	err := chain.ReadFile(r.Path, func(e chain.Event) error {
		p.End = chain.Link{Length: e.Seq + 1, Head: e.Hash}
		p.Offset += int64(chain.RecordSize(e.Kind, e.Op, len(e.Data)))
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("reading the rotated chain %s: %w", r.Path, err)
	}
	if p.End.Length != r.Length || p.Offset != r.Size {
		return p, fmt.Errorf("the rotated chain %s ends at %d (%d bytes of records), not where its name says (%d, %d bytes)",
			r.Path, p.End.Length, p.Offset, r.Length, r.Size)
	}
	if r.StatePath == "" {
		return p, fmt.Errorf("the rotated chain %s has no state beside it", r.Path)
	}
	st, err := actordir.ReadRotatedState(r.StatePath, archive.MaxStateBytes)
	if err != nil {
		return p, err
	}
	p.HasState, p.State = st.HasState, st.Data
	return p, nil
}
