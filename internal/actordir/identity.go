package actordir

import (
	"fmt"
	"path/filepath"
)

// Identity is what IdentityFile holds: whose directory it is.
type Identity struct {
	ID        string
	Name      string
	Namespace string
}

// identityV1 is IdentityFile's format, version 1.
type identityV1 struct {
	Version   int    `json:"version"`
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// ReadIdentity reads dir's identity; ok is false when there is none.
func ReadIdentity(dir string) (id Identity, ok bool, err error) {
	var f identityV1
	if ok, err = readJSON(dir, IdentityFile, "actor identity", &f); !ok || err != nil {
		return Identity{}, false, err
	}
	if f.ID == "" {
		return Identity{}, false, fmt.Errorf("the actor identity %s is corrupt: it names no id", filepath.Join(dir, IdentityFile))
	}
	return Identity{ID: f.ID, Name: f.Name, Namespace: f.Namespace}, true, nil
}

// WriteIdentity saves id as dir's identity, atomically.
func WriteIdentity(dir string, id Identity) error {
	return writeJSON(dir, IdentityFile, identityV1{Version: jsonVersion, ID: id.ID, Name: id.Name, Namespace: id.Namespace})
}
