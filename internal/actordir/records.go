package actordir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Identity is what IdentityFile holds: whose directory it is.
type Identity struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// RunRecord is what a host remembers in an actor's directory about how its
// last run there ended, so that a host that restarts does not start again
// an epoch that already ended (the manager restarts with a new epoch).
type RunRecord struct {
	Epoch      int64  `json:"epoch"`
	Generation int64  `json:"generation"`
	Phase      string `json:"phase"`
	Reason     string `json:"reason,omitempty"`
}

// The JSON files as written: the record's fields and the format version
// (readJSON checks it before the fields are read).
type (
	identityFile struct {
		Version int `json:"version"`
		Identity
	}
	runRecordFile struct {
		Version int `json:"version"`
		RunRecord
	}
)

// ReadIdentity reads dir's identity; ok is false when there is none.
func ReadIdentity(dir string) (id Identity, ok bool, err error) {
	var f identityFile
	if ok, err = readJSON(dir, IdentityFile, "actor identity", &f); !ok || err != nil {
		return Identity{}, false, err
	}
	if f.ID == "" {
		return Identity{}, false, fmt.Errorf("the actor identity %s is corrupt: it names no id", filepath.Join(dir, IdentityFile))
	}
	return f.Identity, true, nil
}

// WriteIdentity saves id as dir's identity, atomically.
func WriteIdentity(dir string, id Identity) error {
	return writeJSON(dir, IdentityFile, identityFile{Version: jsonVersion, Identity: id})
}

// CreateIdentity saves id as the identity of dir, a directory whose
// chain file was just created and has no durable event yet: the file's
// contents are durable when it returns, its directory entry is not. The
// chain's first fsync, which syncs the directory of a new chain file
// (chain.Locked.Created), makes it durable before any event is: a fresh
// start pays one directory sync, not two.
func CreateIdentity(dir string, id Identity) error {
	return writeJSONSync(dir, IdentityFile, identityFile{Version: jsonVersion, Identity: id}, false)
}

// ReadRunRecord reads dir's run record; ok is false when there is none.
func ReadRunRecord(dir string) (r RunRecord, ok bool, err error) {
	var f runRecordFile
	if ok, err = readJSON(dir, RunRecordFile, "host run record", &f); !ok || err != nil {
		return RunRecord{}, false, err
	}
	return f.RunRecord, true, nil
}

// WriteRunRecord saves r as dir's run record, atomically, creating dir (a
// run can end before the engine made it).
func WriteRunRecord(dir string, r RunRecord) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("saving %s: %w", RunRecordFile, err)
	}
	return writeJSON(dir, RunRecordFile, runRecordFile{Version: jsonVersion, RunRecord: r})
}
