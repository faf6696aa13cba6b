package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// IndexFormat names version 1 of a name index entry.
const IndexFormat = "troupe-archive-name-v1"

// maxIndexBytes bounds an index entry a reader accepts.
const maxIndexBytes = 4 << 10

// IndexEntry says that an Actor namespace/name had the id ActorID. A name
// may have had several ids (an Actor deleted and created again): each has
// its own entry, written once, so writers never read-modify-write a shared
// object, and the archive is keyed by id so a new Actor never restores an
// old one's state.
type IndexEntry struct {
	Format    string `json:"format"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	ActorID   string `json:"actorID"`
	// UID is the Actor object's metadata.uid, when known.
	UID string `json:"uid,omitempty"`
	// Created is when the Actor was created (its creationTimestamp).
	Created time.Time `json:"created"`
}

func (e *IndexEntry) validate() error {
	if e.Format != IndexFormat {
		return fmt.Errorf("index entry format %q: this build reads %q", e.Format, IndexFormat)
	}
	if !namespacePattern.MatchString(e.Namespace) {
		return fmt.Errorf("index entry: namespace %q is not a Kubernetes namespace", e.Namespace)
	}
	if !namePattern.MatchString(e.Name) {
		return fmt.Errorf("index entry: name %q is not a Kubernetes object name", e.Name)
	}
	if err := ValidActorID(e.ActorID); err != nil {
		return fmt.Errorf("index entry: %w", err)
	}
	if len(e.UID) > 64 || strings.ContainsFunc(e.UID, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return fmt.Errorf("index entry: uid %q is not a short printable string", e.UID)
	}
	if e.Created.IsZero() || e.Created.Year() < 1970 || e.Created.Year() > 9999 {
		return fmt.Errorf("index entry: created %v is out of range", e.Created)
	}
	return nil
}

// Encode returns the entry's bytes.
func (e *IndexEntry) Encode() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding index entry: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeIndexEntry parses and checks an index entry.
func DecodeIndexEntry(b []byte) (*IndexEntry, error) {
	var e IndexEntry
	if err := decodeStrict(b, maxIndexBytes, &e); err != nil {
		return nil, fmt.Errorf("decoding index entry: %w", err)
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// PutIndex records that namespace/name has the id e.ActorID. Writing the
// same entry again is harmless (the key is per id).
func PutIndex(ctx context.Context, st objstore.Store, e IndexEntry) error {
	e.Format = IndexFormat
	e.Created = e.Created.UTC()
	b, err := e.Encode()
	if err != nil {
		return err
	}
	if err := st.Put(ctx, IndexKey(e.Namespace, e.Name, e.ActorID), bytes.NewReader(b), int64(len(b)), false); err != nil {
		return fmt.Errorf("indexing %s/%s as %s: %w", e.Namespace, e.Name, e.ActorID, err)
	}
	return nil
}

// LookupName returns the ids namespace/name has had, newest first. An
// entry that does not decode, or whose content disagrees with its key, is
// an error: the index is for people, who must not be shown another
// actor's history.
func LookupName(ctx context.Context, st objstore.Store, namespace, name string) ([]IndexEntry, error) {
	if !namespacePattern.MatchString(namespace) || !namePattern.MatchString(name) {
		return nil, fmt.Errorf("looking up %s/%s: not a Kubernetes namespace and name", namespace, name)
	}
	keys, err := st.List(ctx, namePrefix(namespace, name))
	if err != nil {
		return nil, fmt.Errorf("looking up %s/%s: %w", namespace, name, err)
	}
	var out []IndexEntry
	for _, k := range keys {
		b, err := st.Get(ctx, k, maxIndexBytes)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // deleted between the listing and now
		}
		if err != nil {
			return nil, fmt.Errorf("looking up %s/%s: %w", namespace, name, err)
		}
		e, err := DecodeIndexEntry(b)
		if err != nil {
			return nil, fmt.Errorf("looking up %s/%s: %s: %w", namespace, name, k, err)
		}
		if IndexKey(e.Namespace, e.Name, e.ActorID) != k {
			return nil, fmt.Errorf("looking up %s/%s: %s holds the entry of %s/%s (%s)", namespace, name, k, e.Namespace, e.Name, e.ActorID)
		}
		out = append(out, *e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// DeleteIndex removes namespace/name's entry for id.
func DeleteIndex(ctx context.Context, st objstore.Store, namespace, name, id string) error {
	if err := st.Delete(ctx, IndexKey(namespace, name, id)); err != nil {
		return fmt.Errorf("removing %s/%s's index entry for %s: %w", namespace, name, id, err)
	}
	return nil
}
