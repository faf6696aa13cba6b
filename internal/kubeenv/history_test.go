package kubeenv

import (
	"fmt"
	"slices"
	"testing"

	"github.com/go-logr/logr"
)

func TestSecretHistoryKeepsTheLastValuesOfEachKey(t *testing.T) {
	var h secretHistory
	for i := range maxSeenPerKey + 3 {
		h.record(map[string][]byte{"token": fmt.Appendf(nil, "token-%02d", i), "short": []byte("abc")})
	}
	h.record(map[string][]byte{"token": []byte("token-05")}) // seen before: now the latest
	got := h.values("token")
	want := []string{"token-03", "token-04", "token-06", "token-07", "token-08", "token-09", "token-10", "token-05"}
	if !slices.Equal(got, want) {
		t.Fatalf("values = %v, want %v", got, want)
	}
	if len(h.values("short")) != 0 {
		t.Error("a value too short to scrub was kept")
	}
	if all := h.all(); !slices.Equal(all, want) {
		t.Fatalf("all = %v, want %v", all, want)
	}
}

func TestUnwatchedHistoriesAreBounded(t *testing.T) {
	w := NewWatcher(nil, logr.Discard())
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]ObjectKey, maxUnwatchedHistories+10)
	for i := range keys {
		keys[i] = ObjectKey{Kind: Secret, Namespace: "ns", Name: fmt.Sprintf("s-%d", i)}
		w.history(keys[i]).record(map[string][]byte{"k": []byte("value-of-" + keys[i].Name)})
		w.unwatched(keys[i])
	}
	// A Secret watched again is not forgotten while it is watched.
	w.objs[keys[0]] = &watched{key: keys[0]}
	w.history(keys[0])
	for i := range 20 {
		k := ObjectKey{Kind: Secret, Namespace: "ns", Name: fmt.Sprintf("later-%d", i)}
		w.history(k)
		w.unwatched(k)
	}
	if n := len(w.seen); n > maxUnwatchedHistories+1 {
		t.Fatalf("%d histories kept, want at most %d unwatched ones and the watched one", n, maxUnwatchedHistories)
	}
	if w.seen[keys[0]] == nil {
		t.Error("the history of a watched Secret was forgotten")
	}
	if w.seen[keys[1]] != nil || w.seen[keys[len(keys)-1]] == nil {
		t.Error("not the Secret unwatched longest was forgotten")
	}
}
