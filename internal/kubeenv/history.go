package kubeenv

import (
	"maps"
	"slices"
	"sync"

	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// Bounds of what a Watcher remembers of Secrets.
const (
	// maxSeenPerKey is how many values of one key of a Secret are kept:
	// the current one and the last few it replaced.
	maxSeenPerKey = 8
	// maxUnwatchedHistories bounds the histories kept for Secrets no
	// actor references any more (an actor between two runs references
	// none); past it the one unwatched longest is forgotten.
	maxUnwatchedHistories = 1024
)

// secretHistory is every value this process saw under each key of one
// Secret, oldest first. It outlives the watch, so that an actor started
// again after its Secret changed still has the values an earlier run may
// have kept in its state scrubbed (runtimehandler.EnvSource.SecretValues).
type secretHistory struct {
	mu   sync.Mutex
	keys map[string][]string
}

// record notes the values of data as the latest of their keys. Values too
// short to be scrubbed are not kept.
func (h *secretHistory) record(data map[string][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys == nil {
		h.keys = map[string][]string{}
	}
	for k, b := range data {
		if len(b) < runtimehandler.MinRedactBytes {
			continue
		}
		vals := h.keys[k]
		if n := len(vals); n > 0 && vals[n-1] == string(b) {
			continue // the common update: another key changed
		}
		vals = slices.DeleteFunc(vals, func(v string) bool { return v == string(b) })
		vals = append(vals, string(b))
		if len(vals) > maxSeenPerKey {
			vals = slices.Delete(vals, 0, len(vals)-maxSeenPerKey)
		}
		h.keys[k] = vals
	}
}

// values returns what was seen under key, oldest first.
func (h *secretHistory) values(key string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.keys[key])
}

// all returns what was seen under every key, by key, oldest first.
func (h *secretHistory) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(h.keys)) {
		out = append(out, h.keys[k]...)
	}
	return out
}

// history returns the history of the Secret key, making it the first
// time; called with w.mu held.
func (w *Watcher) history(key ObjectKey) *secretHistory {
	h := w.seen[key]
	if h == nil {
		h = &secretHistory{}
		w.seen[key] = h
	}
	return h
}

// unwatched notes that the watch of the Secret key ended, forgetting the
// history of the Secret unwatched longest when too many are kept; called
// with w.mu held.
func (w *Watcher) unwatched(key ObjectKey) {
	w.unwatchedKeys = append(w.unwatchedKeys, key)
	for len(w.unwatchedKeys) > maxUnwatchedHistories {
		oldest := w.unwatchedKeys[0]
		w.unwatchedKeys = slices.Delete(w.unwatchedKeys, 0, 1)
		if w.objs[oldest] == nil && !slices.Contains(w.unwatchedKeys, oldest) {
			delete(w.seen, oldest)
		}
	}
}
