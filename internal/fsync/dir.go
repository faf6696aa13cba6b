package fsync

import (
	"fmt"
	"os"
)

// Dir makes the entries of the directory dir durable: a file created or
// renamed in it survives a crash only once they are.
func Dir(dir string) error {
	observe(KindDir, dir)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
