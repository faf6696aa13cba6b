package actordir

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/troupe-dev/troupe/internal/fsync"
)

// writeFileAtomic replaces dir/name with data so that a crash leaves either
// the old file or the new one: a temporary file in the same directory,
// fsync, rename over the old, fsync of the directory (unless syncDir is
// false: the caller makes the directory durable itself).
func writeFileAtomic(dir, name string, data []byte, syncDir bool) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if err = fsync.Data(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: fsync: %w", name, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	// The rename is durable only once the directory entry is.
	if !syncDir {
		return nil
	}
	if err = fsync.Dir(dir); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	return nil
}
