package chain

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// StateRecord is how an event describes the actor's state
// (docs/chain-format.md, "Lifecycle event data"): whether it has one, and
// the SHA-256 (64 lowercase hex digits) and size of its bytes.
type StateRecord struct {
	HasState bool
	Sha256   string
	Bytes    int64
}

// RecordsState reports whether events of kind k record the actor's state
// as it is after them: ActorTick and HandlerResult (ok or not: a failed
// call records the state it left unchanged) and InitResult (when ok; a
// failed init records none). The actor's current state is the one the
// last such event records.
func RecordsState(k Kind) bool {
	switch k {
	case KindTick, KindHandlerResult, KindInitResult:
		return true
	}
	return false
}

// RecordedState returns the state e records, ok false when e records none
// (a kind RecordsState rejects, or a failed InitResult). An event of a kind
// that must record a state but whose data does not say it well is an
// error: a reader must not skip it and take an older state for the
// current one. Chains of v0.1.0 name the digest of ActorTick events
// stateDigest; both names are read.
func RecordedState(e *Event) (StateRecord, bool, error) {
	if !RecordsState(e.Kind) {
		return StateRecord{}, false, nil
	}
	var d struct {
		OK       *bool  `json:"ok"`
		HasState *bool  `json:"hasState"`
		Sha256   string `json:"stateSha256"`
		Digest   string `json:"stateDigest"`
		Bytes    *int64 `json:"stateBytes"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return StateRecord{}, false, fmt.Errorf("event %d (%s) records no readable state: %w", e.Seq, e.Kind, err)
	}
	if e.Kind == KindInitResult && d.OK != nil && !*d.OK {
		return StateRecord{}, false, nil
	}
	if d.HasState == nil {
		return StateRecord{}, false, fmt.Errorf("event %d (%s) records no state (no hasState)", e.Seq, e.Kind)
	}
	r := StateRecord{HasState: *d.HasState}
	if !r.HasState {
		return r, true, nil
	}
	r.Sha256 = d.Sha256
	if r.Sha256 == "" {
		r.Sha256 = d.Digest
	}
	if b, err := hex.DecodeString(r.Sha256); err != nil || len(b) != 32 || hex.EncodeToString(b) != r.Sha256 {
		return StateRecord{}, false, fmt.Errorf("event %d (%s) records a state digest %q that is not 64 lowercase hex digits", e.Seq, e.Kind, r.Sha256)
	}
	if d.Bytes != nil {
		if *d.Bytes < 0 {
			return StateRecord{}, false, fmt.Errorf("event %d (%s) records a state of %d bytes", e.Seq, e.Kind, *d.Bytes)
		}
		r.Bytes = *d.Bytes
	} else {
		r.Bytes = -1
	}
	return r, true, nil
}
