package actordir

import (
	"fmt"
	"os"
)

// RunRecord is what a host remembers in an actor's directory about how its
// last run there ended, so that a host that restarts does not start again
// an epoch that already ended (the manager restarts with a new epoch).
type RunRecord struct {
	Epoch      int64
	Generation int64
	Phase      string
	Reason     string
}

// runRecordV1 is RunRecordFile's format, version 1.
type runRecordV1 struct {
	Version    int    `json:"version"`
	Epoch      int64  `json:"epoch"`
	Generation int64  `json:"generation"`
	Phase      string `json:"phase"`
	Reason     string `json:"reason,omitempty"`
}

// ReadRunRecord reads dir's run record; ok is false when there is none.
func ReadRunRecord(dir string) (r RunRecord, ok bool, err error) {
	var f runRecordV1
	if ok, err = readJSON(dir, RunRecordFile, "host run record", &f); !ok || err != nil {
		return RunRecord{}, false, err
	}
	return RunRecord{Epoch: f.Epoch, Generation: f.Generation, Phase: f.Phase, Reason: f.Reason}, true, nil
}

// WriteRunRecord saves r as dir's run record, atomically, creating dir (a
// run can end before the engine made it).
func WriteRunRecord(dir string, r RunRecord) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("saving %s: %w", RunRecordFile, err)
	}
	return writeJSON(dir, RunRecordFile, runRecordV1{Version: jsonVersion, Epoch: r.Epoch, Generation: r.Generation, Phase: r.Phase, Reason: r.Reason})
}
