package actorhost

import (
	"fmt"
	"os"

	"github.com/google/uuid"

	"github.com/troupe-dev/troupe/internal/actordir"
)

// An actor's directory (ActorConfig.Dir) is laid out, read and written by
// package actordir; this file adapts it to the engine.

// savedState is a state as saved: hasState false when init returned none.
type savedState struct {
	hasState bool
	state    []byte
}

// writeState saves s atomically in dir.
func writeState(dir string, s savedState) error {
	return actordir.WriteState(dir, actordir.State{HasState: s.hasState, Data: s.state})
}

// readState loads the saved state from dir; ok is false when there is none.
// A state file that is corrupt, or of a version this build does not read,
// is an error, never silently replaced by the initial state.
func readState(dir string, maxState int) (s savedState, ok bool, err error) {
	st, ok, err := actordir.ReadState(dir, maxState)
	if err != nil || !ok {
		return savedState{}, ok, err
	}
	return savedState{hasState: st.HasState, state: st.Data}, true, nil
}

// claimDir makes dir (created if need be) the directory of the actor id,
// and returns that id: "" takes the id dir was claimed for before, or a
// new UUID. A dir claimed by another actor is an error, so two actors can
// never write one chain.
func claimDir(dir, id, name, namespace string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("creating its directory: %w", err)
	}
	saved, ok, err := actordir.ReadIdentity(dir)
	switch {
	case err != nil:
		return "", err
	case ok && id == "":
		return saved.ID, nil
	case ok && saved.ID != id:
		return "", fmt.Errorf("actor %s: directory %s belongs to actor %s", id, dir, saved.ID)
	case ok:
		return id, nil
	}
	if id == "" {
		id = uuid.NewString()
	}
	if err := actordir.WriteIdentity(dir, actordir.Identity{ID: id, Name: name, Namespace: namespace}); err != nil {
		return "", err
	}
	return id, nil
}
