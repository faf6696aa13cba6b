package actordir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/chain"
)

// golden is an actor's directory as Troupe v0.1.0 wrote it, before its
// formats carried versions: the engine ran testdata counter.wat in it
// (identity, state, chain) and the host recorded a run (host-run.json).
const golden = "testdata/v0.1.0"

func TestGoldenV010DirectoryStillLoads(t *testing.T) {
	id, ok, err := ReadIdentity(golden)
	if err != nil || !ok {
		t.Fatalf("ReadIdentity = %v, %v", ok, err)
	}
	if want := (Identity{ID: "5f0b7a52-6c1e-4f7e-9a3b-2f1d6a9e8c41", Name: "counter", Namespace: "default"}); id != want {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	st, ok, err := ReadState(golden, 1024)
	if err != nil || !ok {
		t.Fatalf("ReadState = %v, %v", ok, err)
	}
	if !st.HasState || string(st.Data) != "state of v0.1.0:x" {
		t.Fatalf("state %+v", st)
	}
	rec, ok, err := ReadRunRecord(golden)
	if err != nil || !ok {
		t.Fatalf("ReadRunRecord = %v, %v", ok, err)
	}
	if want := (RunRecord{Epoch: 3, Generation: 2, Phase: "Failed", Reason: "Trapped"}); rec != want {
		t.Fatalf("run record %+v, want %+v", rec, want)
	}
	rep, err := chain.VerifyFile(ChainPath(golden))
	if err != nil || !rep.OK() || rep.Events == 0 {
		t.Fatalf("the v0.1.0 chain: %+v, %v", rep, err)
	}
}

func TestWrittenFilesCarryTheirVersion(t *testing.T) {
	dir := t.TempDir()
	if err := WriteIdentity(dir, Identity{ID: "a", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteRunRecord(filepath.Join(dir, "made"), RunRecord{Epoch: 1, Phase: "Failed"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteStateSlot(dir, 1, SavedState{State: State{HasState: true, Data: []byte("s")}, Seq: 3, Durable: 2}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{IdentityFile, filepath.Join("made", RunRecordFile)} {
		raw, _ := os.ReadFile(filepath.Join(dir, f))
		if !strings.Contains(string(raw), `"version": 1`) {
			t.Errorf("%s = %s, without its version", f, raw)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, StateSlotFiles[1]))
	if !strings.HasPrefix(string(raw), "TRSTATE2") {
		t.Errorf("state starts with %q", raw[:8])
	}
}

func TestRoundTrips(t *testing.T) {
	dir := t.TempDir()
	id := Identity{ID: "id-1", Name: "name", Namespace: "ns"}
	if err := WriteIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := ReadIdentity(dir); err != nil || !ok || got != id {
		t.Fatalf("identity %+v, %v, %v", got, ok, err)
	}
	rec := RunRecord{Epoch: 7, Generation: 3, Phase: "Succeeded", Reason: "Shutdown"}
	if err := WriteRunRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := ReadRunRecord(dir); err != nil || !ok || got != rec {
		t.Fatalf("run record %+v, %v, %v", got, ok, err)
	}
	for name, s := range map[string]State{
		"some":  {HasState: true, Data: []byte("hello")},
		"empty": {HasState: true, Data: []byte{}},
		"none":  {},
	} {
		if err := WriteLegacyState(dir, s); err != nil {
			t.Fatal(err)
		}
		got, ok, err := ReadState(dir, 1024)
		if err != nil || !ok || got.HasState != s.HasState || string(got.Data) != string(s.Data) {
			t.Fatalf("%s: legacy state %+v, %v, %v", name, got, ok, err)
		}
	}
	// Each slot is overwritten in place, with a longer state, a shorter
	// one and none: what is read is exactly the last write.
	for i, s := range []SavedState{
		{State: State{HasState: true, Data: []byte("a longer state than the next")}, Seq: 5, Durable: 4},
		{State: State{HasState: true, Data: []byte("short")}, Seq: 9, Durable: 6},
		{State: State{HasState: true, Data: []byte{}}, Seq: 12, Durable: 10},
		{Seq: 1 << 40, Durable: 1<<40 - 1},
	} {
		slot := i % 2
		if err := WriteStateSlot(dir, slot, s); err != nil {
			t.Fatal(err)
		}
		slots, err := ReadStateSlots(dir, 1024)
		if err != nil {
			t.Fatal(err)
		}
		got := slots[slot]
		if !got.Present || got.Err != nil || got.Saved.HasState != s.HasState || string(got.Saved.Data) != string(s.Data) ||
			got.Saved.Seq != s.Seq || got.Saved.Durable != s.Durable || got.Name != StateSlotFiles[slot] {
			t.Fatalf("write %d: slot %+v, want %+v", i, got, s)
		}
	}
	empty := t.TempDir()
	if _, ok, err := ReadIdentity(empty); ok || err != nil {
		t.Fatalf("no identity: %v, %v", ok, err)
	}
	if _, ok, err := ReadRunRecord(empty); ok || err != nil {
		t.Fatalf("no run record: %v, %v", ok, err)
	}
	if _, ok, err := ReadState(empty, 10); ok || err != nil {
		t.Fatalf("no state: %v, %v", ok, err)
	}
	if slots, err := ReadStateSlots(empty, 10); err != nil || slots[0].Present || slots[1].Present {
		t.Fatalf("no slots: %+v, %v", slots, err)
	}
}
