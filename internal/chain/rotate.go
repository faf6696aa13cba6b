package chain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/troupe-dev/troupe/internal/fsync"
)

// rotatePause, when positive, is slept between the steps of Rotate.
var rotatePause time.Duration

// SlowRotations makes every Rotate of the process pause d between its
// steps (after the new file, after the link, after the rename), so that
// a kill -9 lands inside rotations far more often than it would. It is
// for crash tests, like SplitWrites, and must be called before any
// chain is opened.
func SlowRotations(d time.Duration) { rotatePause = d }

func pauseRotation() {
	if rotatePause > 0 {
		time.Sleep(rotatePause)
	}
}

// NextSuffix names the file Rotate builds the new chain file in before it
// takes the chain file's name: path+NextSuffix. One left by a crash holds
// nothing the chain needs (the rename never happened); RecoverRotation
// removes it.
const NextSuffix = ".next"

// Rotation is what Rotate did: the old file's end, which is where the
// new file's SegmentStart continues, and its size.
type Rotation struct {
	// End is the old file's length and head: the new file's first event,
	// a SegmentStart, has seq End.Length and parent End.Head.
	End Link
	// Size is the old file's size (header and records), which the file
	// at the rotated path keeps; the chain's Size starts over.
	Size int64
	// Head is the SegmentStart's hash: the chain's head after Rotate.
	Head Hash
}

// Rotate moves the chain's events to another file and goes on in a new
// one, without closing the chain: under its lock it makes every event
// durable, writes a new file (header and a SegmentStart with data that
// continues the chain's head, fsynced, locked) beside the chain file,
// hard-links the chain file to rotated, and renames the new file over the
// chain file. The SegmentStart is an event like any other: the chain's
// seqs and hash links go on across the two files, and its head is the
// SegmentStart's. A reader of the chain file alone sees a file that
// begins with a SegmentStart, as after a move.
//
// A crash at any point leaves the chain file whole, either the old one
// (with, perhaps, rotated as a second name of it and the new file under
// path+NextSuffix: RecoverRotation undoes both) or the new one with the
// old at rotated. Nothing appended is lost or written twice: no event is
// appended while Rotate holds the lock, and the new file holds only the
// SegmentStart when it takes the chain file's name.
func (c *Chain) Rotate(rotated string, data []byte) (Rotation, error) {
	return c.RotateAt(func(Link) (string, []byte, error) { return rotated, data, nil })
}

// RotateAt is Rotate with the rotated name and the SegmentStart's data
// chosen by at, which is called under the chain's lock once every event
// is durable, with the chain's end: what the old file will hold. at must
// not call the chain's methods; an error from it stops the rotation with
// nothing changed. Whatever must be on disk before the rotation (what
// the caller saves beside the rotated file) is written in at.
func (c *Chain) RotateAt(at func(end Link) (rotated string, data []byte, err error)) (Rotation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.mem != nil:
		return Rotation{}, errors.New("rotating a chain: a memory chain has no file")
	case c.closed:
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, ErrClosed)
	case c.length == 0:
		return Rotation{}, fmt.Errorf("rotating chain %s: it holds no event to continue", c.path)
	}
	// A tick fsyncing outside the lock holds the old file; it must be
	// done before that file is closed below.
	for c.syncs > 0 {
		c.synced.Wait()
	}
	if err := c.syncAllLocked(); err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	rotated, data, err := at(Link{Length: c.length, Head: c.head})
	if err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	if filepath.Dir(rotated) != filepath.Dir(c.path) || rotated == c.path {
		return Rotation{}, fmt.Errorf("rotating chain %s: %s is not another name in its directory", c.path, rotated)
	}
	if err := validData(data); err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	dir := filepath.Dir(c.path)
	next := c.path + NextSuffix
	if err := os.Remove(next); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	f, err := os.OpenFile(next, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			_ = os.Remove(next)
		}
	}()
	// Locked before it has the chain's name: a Lock of the path then
	// finds it taken, whichever file the name points at.
	if err := lockExclusive(f); err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	rot := Rotation{End: Link{Length: c.length, Head: c.head}, Size: c.size}
	head := c.head
	buf := append([]byte(nil), magicBytes...)
	buf, rot.Head = appendRecord(buf, c.hasher, c.length, &head, KindSegmentStart, "segment-start", c.now().UnixNano(), data)
	if err := writeAll(f, buf); err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: writing the new file: %w", c.path, err)
	}
	if err := fsync.Data(f); err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: syncing the new file: %w", c.path, err)
	}
	pauseRotation()
	if err := os.Link(c.path, rotated); err != nil {
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	if err := fsync.Dir(dir); err != nil {
		_ = os.Remove(rotated)
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	pauseRotation()
	if err := os.Rename(next, c.path); err != nil {
		_ = os.Remove(rotated)
		return Rotation{}, fmt.Errorf("rotating chain %s: %w", c.path, err)
	}
	keep = true
	pauseRotation()
	old := c.f
	c.f = f
	c.head, c.length, c.count, c.opened = rot.Head, c.length+1, 1, 1
	c.size, c.durable, c.dirty = int64(len(buf)), c.length, false
	// The rename is durable with the directory; until then a crash may
	// leave the old file at both names, which RecoverRotation undoes. A
	// failed fsync of the directory leaves the chain unable to say what
	// is durable: it fails as after a failed write.
	if err := fsync.Dir(dir); err != nil {
		c.err = fmt.Errorf("rotating chain %s: %w", c.path, err)
		_ = old.Close()
		return rot, c.err
	}
	_ = old.Close()
	return rot, nil
}

// validData checks what Append checks of an event's data.
func validData(data []byte) error {
	if len(data) > MaxDataSize {
		return fmt.Errorf("data is %d bytes, the limit is %d", len(data), MaxDataSize)
	}
	return nil
}

// RecoverRotation undoes what a crash in the middle of Rotate left beside
// the chain file at path, whose lock the caller holds: the new file that
// never took the chain file's name, and each of rotated that is only a
// second name of the chain file itself (the link was made, the rename
// was not). It returns the names it removed.
func RecoverRotation(path string, rotated []string) ([]string, error) {
	var removed []string
	next := path + NextSuffix
	if err := os.Remove(next); err == nil {
		removed = append(removed, next)
	} else if !errors.Is(err, os.ErrNotExist) {
		return removed, fmt.Errorf("removing %s: %w", next, err)
	}
	cur, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return removed, nil
	}
	if err != nil {
		return removed, err
	}
	for _, r := range rotated {
		st, err := os.Stat(r)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return removed, err
		}
		if os.SameFile(cur, st) {
			if err := os.Remove(r); err != nil {
				return removed, fmt.Errorf("removing %s: %w", r, err)
			}
			removed = append(removed, r)
		}
	}
	if len(removed) > 0 {
		if err := fsync.Dir(filepath.Dir(path)); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
