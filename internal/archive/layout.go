package archive

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The object layout (docs/archive.md), relative to the store's prefix:
//
//	actors/<actorID>/manifests/<epoch>.json
//	actors/<actorID>/epochs/<epoch>/segments/<first>-<length>-<sha256[:16]>.seg
//	actors/<actorID>/epochs/<epoch>/states/<event>-<sha256[:16]>.state
//	names/<namespace>/<name>/<actorID>.json
//
// Numbers are zero-padded to 20 decimal digits, so that the store's
// lexical order is numeric order. A segment's and a state's key are
// derived from what the manifest says of them, so a manifest cannot point
// anywhere else, and an object a manifest names is never overwritten with
// other bytes (another upload of other bytes gets another key). Manifests
// have a directory of their own so that listing them (before every manifest
// write, and to find the highest epoch) costs one entry an epoch, not one
// an object.
const (
	actorsDir     = "actors/"
	epochsDir     = "/epochs/"
	manifestsDir  = "/manifests/"
	manifestExt   = ".json"
	namesDir      = "names/"
	numberDigits  = 20
	keyHashDigits = 16
)

// MaxEpoch bounds an epoch (status.epoch is an int64).
const MaxEpoch = 1<<63 - 1

var (
	// An actor id is status.actorID: a UUID in practice; any short token of
	// lowercase letters, digits and dashes is accepted.
	actorIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
	// Kubernetes names: a namespace is a DNS label, an Actor's name a DNS
	// subdomain.
	namespacePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	namePattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
)

// ValidActorID reports whether id may name an actor in the archive.
func ValidActorID(id string) error {
	if !actorIDPattern.MatchString(id) {
		return fmt.Errorf("actor id %q: want 1-64 lowercase letters, digits and dashes", id)
	}
	return nil
}

func validEpoch(e int64) error {
	if e < 0 {
		return fmt.Errorf("epoch %d is negative", e)
	}
	return nil
}

func pad(n uint64) string { return fmt.Sprintf("%0*d", numberDigits, n) }

func actorPrefix(id string) string { return actorsDir + id + "/" }

func epochsPrefix(id string) string { return actorsDir + id + epochsDir }

func epochPrefix(id string, epoch int64) string {
	return epochsPrefix(id) + pad(uint64(epoch)) + "/"
}

func manifestsPrefix(id string) string { return actorsDir + id + manifestsDir }

// ManifestKey is where epoch's manifest lives.
func ManifestKey(id string, epoch int64) string {
	return manifestsPrefix(id) + pad(uint64(epoch)) + manifestExt
}

// SegmentKey is where a segment lives.
func SegmentKey(id string, epoch int64, s *Segment) string {
	return fmt.Sprintf("%ssegments/%s-%s-%s.seg", epochPrefix(id, epoch), pad(s.First), pad(s.Length), shortHex(s.Sha256))
}

// StateKey is where a state snapshot lives; "" for no state.
func StateKey(id string, epoch int64, st *StateRef) string {
	if !st.HasState {
		return ""
	}
	var ev uint64
	if st.Event != nil {
		ev = *st.Event
	}
	return fmt.Sprintf("%sstates/%s-%s.state", epochPrefix(id, epoch), pad(ev), shortHex(st.Sha256))
}

func shortHex(h string) string {
	if len(h) < keyHashDigits {
		return h
	}
	return h[:keyHashDigits]
}

// parseManifestKey returns the epoch of a key
// actors/<id>/manifests/<epoch>.json; ok false for any other key.
func parseManifestKey(id, key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, manifestsPrefix(id))
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, manifestExt)
	if !ok || len(num) != numberDigits {
		return 0, false
	}
	e, err := strconv.ParseInt(num, 10, 64)
	if err != nil || e < 0 || pad(uint64(e)) != num {
		return 0, false
	}
	return e, true
}

// IndexKey is the name index's entry for an actor id.
func IndexKey(namespace, name, id string) string {
	return namesDir + namespace + "/" + name + "/" + id + ".json"
}

func namePrefix(namespace, name string) string { return namesDir + namespace + "/" + name + "/" }

func validHex32(what, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != s {
		return fmt.Errorf("%s %q: want 64 lowercase hex digits", what, s)
	}
	return nil
}
