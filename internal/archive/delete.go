package archive

import (
	"context"
	"fmt"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// DeleteActor removes every object of the actor's archive (all epochs'
// manifests, segments and states), manifests first, so that an interrupted
// deletion leaves no manifest naming a removed object: what remains is
// objects no manifest names, which a later DeleteActor removes. The name
// index entries are the caller's to remove (DeleteIndex): it knows the
// name. The manager calls both through Expire, a retention after the
// Actor's deletion (tombstone.go).
func DeleteActor(ctx context.Context, st objstore.Store, id string) (int, error) {
	if err := ValidActorID(id); err != nil {
		return 0, err
	}
	keys, err := st.List(ctx, actorPrefix(id))
	if err != nil {
		return 0, fmt.Errorf("deleting the archive of %s: %w", id, err)
	}
	var manifests, rest []string
	for _, k := range keys {
		if _, ok := parseManifestKey(id, k); ok {
			manifests = append(manifests, k)
		} else {
			rest = append(rest, k)
		}
	}
	n := 0
	for _, k := range append(manifests, rest...) {
		if err := st.Delete(ctx, k); err != nil {
			return n, fmt.Errorf("deleting the archive of %s: %w", id, err)
		}
		n++
	}
	return n, nil
}
