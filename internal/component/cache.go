package component

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Cache is a digest-addressed store of modules on the node's disk:
// blobs/sha256/<hex> holds a module, refs/sha256/<hex> the module digest
// that an OCI manifest with that digest (or a URL with that SHA-256) held,
// so a source fetched before is not downloaded again. Entries are written through a
// temporary file and a rename, so a reader never sees half a module, and
// verified on every read, so a damaged file is dropped and fetched again.
// It is safe for concurrent use by goroutines and processes.
type Cache struct {
	dir string
}

// NewCache opens (creating it if needed) the cache in dir.
func NewCache(dir string) (*Cache, error) {
	for _, sub := range []string{"blobs/sha256", "refs/sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("creating the component cache in %s: %w", dir, err)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Digest returns "sha256:<hex>" of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// parseDigest returns the hex of a "sha256:<hex>" digest, or of a bare hex
// SHA-256, checking it is 64 lowercase hex digits (it becomes a file name).
func parseDigest(d string) (string, error) {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) != sha256.Size*2 {
		return "", fmt.Errorf("digest %q is not a SHA-256 (64 hex digits)", d)
	}
	for _, r := range h {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", fmt.Errorf("digest %q is not a SHA-256 (64 lowercase hex digits)", d)
		}
	}
	return h, nil
}

// Get returns the module with the given digest ("sha256:<hex>" or bare
// hex), or false when the cache does not hold it (or held a damaged copy,
// which it removes).
func (c *Cache) Get(digest string) ([]byte, bool, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, false, err
	}
	path := filepath.Join(c.dir, "blobs", "sha256", h)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading cached module %s: %w", h, err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != h {
		// Damaged on disk: forget it, the caller fetches it again.
		_ = os.Remove(path)
		return nil, false, nil
	}
	return data, true, nil
}

// Put stores data under its digest and returns the digest.
func (c *Cache) Put(data []byte) (string, error) {
	d := Digest(data)
	h := strings.TrimPrefix(d, "sha256:")
	path := filepath.Join(c.dir, "blobs", "sha256", h)
	if st, err := os.Stat(path); err == nil && st.Size() == int64(len(data)) {
		return d, nil
	}
	if err := c.writeFile(path, data); err != nil {
		return "", fmt.Errorf("caching module %s: %w", d, err)
	}
	return d, nil
}

// Ref returns the module digest recorded for an OCI manifest digest.
func (c *Cache) Ref(manifestDigest string) (string, bool) {
	h, err := parseDigest(manifestDigest)
	if err != nil {
		return "", false
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "refs", "sha256", h))
	if err != nil {
		return "", false
	}
	d := strings.TrimSpace(string(data))
	if _, err := parseDigest(d); err != nil {
		return "", false
	}
	return d, true
}

// PutRef records that the OCI manifest manifestDigest holds module
// moduleDigest.
func (c *Cache) PutRef(manifestDigest, moduleDigest string) error {
	h, err := parseDigest(manifestDigest)
	if err != nil {
		return err
	}
	if _, err := parseDigest(moduleDigest); err != nil {
		return err
	}
	if err := c.writeFile(filepath.Join(c.dir, "refs", "sha256", h), []byte(moduleDigest+"\n")); err != nil {
		return fmt.Errorf("recording manifest %s: %w", manifestDigest, err)
	}
	return nil
}

func (c *Cache) writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "put-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
	}
	return werr
}
