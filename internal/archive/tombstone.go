package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// TombstoneFormat names version 1 of a tombstone.
const TombstoneFormat = "troupe-archive-tombstone-v1"

// deletedDir holds the tombstones: deleted/<actorID>.json.
const deletedDir = "deleted/"

// maxTombstoneBytes bounds a tombstone a reader accepts.
const maxTombstoneBytes = 4 << 10

// Tombstone says that the Actor whose archive is ActorID's was deleted,
// and when: the archive is kept for the installation's retention after
// DeletedAt, then removed (Expire). It lives in the store, next to what it
// is about, so that the retention needs no state in the cluster (the Actor
// is gone) and survives restarts of the manager that keeps it.
type Tombstone struct {
	Format    string    `json:"format"`
	ActorID   string    `json:"actorID"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       string    `json:"uid,omitempty"`
	DeletedAt time.Time `json:"deletedAt"`
}

// TombstoneKey is the key of id's tombstone.
func TombstoneKey(id string) string { return deletedDir + id + manifestExt }

func (t *Tombstone) validate() error {
	if t.Format != TombstoneFormat {
		return fmt.Errorf("tombstone format %q: this build reads %q", t.Format, TombstoneFormat)
	}
	e := IndexEntry{Format: IndexFormat, Namespace: t.Namespace, Name: t.Name, ActorID: t.ActorID, UID: t.UID, Created: t.DeletedAt}
	if err := e.validate(); err != nil {
		return fmt.Errorf("tombstone: %s", strings.TrimPrefix(err.Error(), "index entry: "))
	}
	return nil
}

// PutTombstone records that t's Actor was deleted. Writing it again (a
// manager that restarted before it released the Actor) is harmless.
func PutTombstone(ctx context.Context, st objstore.Store, t Tombstone) error {
	t.Format = TombstoneFormat
	t.DeletedAt = t.DeletedAt.UTC()
	if err := t.validate(); err != nil {
		return err
	}
	b, err := json.Marshal(&t)
	if err != nil {
		return fmt.Errorf("encoding the tombstone of %s: %w", t.ActorID, err)
	}
	b = append(b, '\n')
	if err := st.Put(ctx, TombstoneKey(t.ActorID), bytes.NewReader(b), int64(len(b)), false); err != nil {
		return fmt.Errorf("writing the tombstone of %s/%s (%s): %w", t.Namespace, t.Name, t.ActorID, err)
	}
	return nil
}

// DecodeTombstone parses and checks a tombstone.
func DecodeTombstone(b []byte) (*Tombstone, error) {
	var t Tombstone
	if err := decodeStrict(b, maxTombstoneBytes, &t); err != nil {
		return nil, fmt.Errorf("decoding tombstone: %w", err)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// BadTombstone is an object under deleted/ that is not a tombstone this
// build reads; it is left alone (a newer build's, or damage) and reported.
type BadTombstone struct {
	Key string
	Err error
}

// Tombstones lists the tombstones in the store, in key order. Objects
// under deleted/ that do not decode, or whose content names another id
// than their key, are returned apart: nothing is removed on their word.
func Tombstones(ctx context.Context, st objstore.Store) ([]Tombstone, []BadTombstone, error) {
	keys, err := st.List(ctx, deletedDir)
	if err != nil {
		return nil, nil, fmt.Errorf("listing tombstones: %w", err)
	}
	var good []Tombstone
	var bad []BadTombstone
	for _, k := range keys {
		b, err := st.Get(ctx, k, maxTombstoneBytes)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // expired by another sweep since the listing
		}
		if errors.Is(err, objstore.ErrTooLarge) {
			bad = append(bad, BadTombstone{Key: k, Err: err})
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading tombstone %s: %w", k, err)
		}
		t, err := DecodeTombstone(b)
		if err == nil && TombstoneKey(t.ActorID) != k {
			err = fmt.Errorf("%s holds the tombstone of %s", k, t.ActorID)
		}
		if err != nil {
			bad = append(bad, BadTombstone{Key: k, Err: err})
			continue
		}
		good = append(good, *t)
	}
	return good, bad, nil
}

// RemoveArchive removes t's actor's archive (DeleteActor) and its name
// index entry, and keeps the tombstone: hosts go on skipping the actor, and
// a later Expire removes again what an upload that was in flight put
// meanwhile. It returns how many objects it removed.
func RemoveArchive(ctx context.Context, st objstore.Store, t Tombstone) (int, error) {
	n, err := DeleteActor(ctx, st, t.ActorID)
	if err != nil {
		return n, err
	}
	if err := DeleteIndex(ctx, st, t.Namespace, t.Name, t.ActorID); err != nil {
		return n, err
	}
	return n + 1, nil
}

// Expire removes t's actor's archive and its name index entry
// (RemoveArchive) and, last, the tombstone, so that an interrupted expiry
// is done again by the next sweep. It returns how many objects it removed.
func Expire(ctx context.Context, st objstore.Store, t Tombstone) (int, error) {
	n, err := RemoveArchive(ctx, st, t)
	if err != nil {
		return n, err
	}
	if err := st.Delete(ctx, TombstoneKey(t.ActorID)); err != nil {
		return n, fmt.Errorf("removing the tombstone of %s: %w", t.ActorID, err)
	}
	return n + 1, nil
}

// HasTombstone says whether id's Actor was deleted: its tombstone is in
// the store. A host asks before it uploads for an actor (a claim, a
// crashed run's leftovers), so that a node that comes back after the
// Actor was deleted does not recreate the archive the retention removes.
// A tombstone that does not decode is an error, not a yes or a no.
func HasTombstone(ctx context.Context, st objstore.Store, id string) (bool, error) {
	b, err := st.Get(ctx, TombstoneKey(id), maxTombstoneBytes)
	if errors.Is(err, objstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the tombstone of %s: %w", id, err)
	}
	t, err := DecodeTombstone(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", TombstoneKey(id), err)
	}
	if t.ActorID != id {
		return false, fmt.Errorf("%s holds the tombstone of %s", TombstoneKey(id), t.ActorID)
	}
	return true, nil
}
