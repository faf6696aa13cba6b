package actorhost

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// goldenChain is a chain the engine of v0.1.0 wrote (its README says how):
// its ActorTick events name the state digest stateDigest, the other
// lifecycle events stateSha256.
var goldenChain = filepath.Join("testdata", "chain-v0.1.0")

// recordedState reads the state a lifecycle event (InitCall, InitResult,
// ActorRestart, ActorTick) records, taking the digest under either name it
// has had, as docs/chain-format.md asks of every reader.
func recordedState(t testing.TB, ev chain.Event) (digest string, hasState bool) {
	t.Helper()
	var d struct {
		HasState    bool   `json:"hasState"`
		StateSha256 string `json:"stateSha256"`
		StateDigest string `json:"stateDigest"` // ActorTick, written by v0.1.0
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("%s event data %s: %v", ev.Kind, ev.Data, err)
	}
	return cmp.Or(d.StateSha256, d.StateDigest), d.HasState
}

func hasStateRecord(k chain.Kind) bool {
	return k == chain.KindInitCall || k == chain.KindInitResult || k == chain.KindRestart || k == chain.KindTick
}

// TestChainsWrittenBeforeStillVerifyShowAndRead: a chain of v0.1.0 still
// verifies, renders as `troupe chain show --json` rendered it then, reads
// back from that export, and every state it recorded is found whichever
// name the digest has; and the engine of today continues it, writing the
// one name from then on.
func TestChainsWrittenBeforeStillVerifyShowAndRead(t *testing.T) {
	path := filepath.Join(goldenChain, chain.FileName)
	rep, err := chain.VerifyFile(path)
	if err != nil || rep.FirstBad != -1 || rep.Events != 13 {
		t.Fatalf("verify: %+v, %v; want 13 intact events", rep, err)
	}

	// `chain show --json`, byte for byte as v0.1.0 printed it.
	shown, err := os.ReadFile(filepath.Join(goldenChain, "chain.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []chain.Event
	var rendered []byte
	if err := chain.ReadFile(path, func(ev chain.Event) error {
		ev.Data = bytes.Clone(ev.Data)
		evs = append(evs, ev)
		rendered = append(chain.AppendJSON(rendered, &ev), '\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rendered, shown) {
		t.Errorf("the chain renders otherwise than v0.1.0 showed it:\n%s\nwant:\n%s", rendered, shown)
	}
	var fromExport int
	if err := chain.ReadJSON(bytes.NewReader(shown), func(e *chain.Event) error {
		fromExport++
		return nil
	}); err != nil || fromExport != len(evs) {
		t.Errorf("reading the export back: %d events, %v", fromExport, err)
	}

	// Every state the chain records reads, under either name; a run
	// resumes from the state the last tick of the one before saved.
	var legacy int
	var lastTick string
	for _, ev := range evs {
		if !hasStateRecord(ev.Kind) {
			continue
		}
		digest, has := recordedState(t, ev)
		if !has || len(digest) != 64 {
			t.Errorf("%s at %d: state %q (hasState %v), want a SHA-256", ev.Kind, ev.Seq, digest, has)
		}
		if bytes.Contains(ev.Data, []byte(`"stateDigest"`)) {
			legacy++
		}
		switch ev.Kind {
		case chain.KindTick:
			lastTick = digest
		case chain.KindRestart:
			if digest != lastTick {
				t.Errorf("ActorRestart at %d resumes from %s, the last tick saved %s", ev.Seq, digest, lastTick)
			}
		}
	}
	if legacy != 4 {
		t.Errorf("%d events name the digest stateDigest, want the 4 ActorTick events", legacy)
	}

	// Today's engine continues the chain and writes stateSha256 only. It
	// resumes from the state the chain records last, which v0.1.0 kept in
	// its state file: rebuilt here from tick.wat's layout (mode 'c', the
	// tick counter, the last tick's now) and checked against the digest.
	dir := t.TempDir()
	copyFile(t, path, filepath.Join(dir, chain.FileName))
	lastTickState := tickState('c')
	binary.LittleEndian.PutUint32(lastTickState[4:], 4)
	binary.LittleEndian.PutUint64(lastTickState[8:], 1767323045015)
	if digestHex(lastTickState) != lastTick {
		t.Fatalf("the rebuilt state has digest %s, the last tick recorded %s", digestHex(lastTickState), lastTick)
	}
	if err := actordir.WriteLegacyState(dir, actordir.State{HasState: true, Data: lastTickState}); err != nil {
		t.Fatal(err)
	}
	e, _ := newTestEngine(t)
	a := start(t, e, ActorConfig{ID: "0b7a4f2e-golden", Name: "golden", Component: compile(t, e, "tick"), Dir: dir,
		InitialState: tickState('c'), TickInterval: time.Hour})
	if more, err := a.tick(context.Background(), a.Done()); !more || err != nil {
		t.Fatalf("tick: %v, %v", more, err)
	}
	if err := a.Stop(context.Background(), "test over"); err != nil {
		t.Fatal(err)
	}
	all := fileEvents(t, dir)
	if len(all) <= len(evs) || all[len(evs)].Parent != evs[len(evs)-1].Hash {
		t.Fatalf("the new run does not continue the old chain")
	}
	if _, err := chain.VerifyFile(filepath.Join(dir, chain.FileName)); err != nil {
		t.Fatal(err)
	}
	var written int
	for _, ev := range all[len(evs):] {
		if !hasStateRecord(ev.Kind) {
			continue
		}
		written++
		if bytes.Contains(ev.Data, []byte(`"stateDigest"`)) || !bytes.Contains(ev.Data, []byte(`"stateSha256"`)) {
			t.Errorf("%s writes %s, want stateSha256 only", ev.Kind, ev.Data)
		}
		if digest, _ := recordedState(t, ev); ev.Kind == chain.KindTick && digest != digestHex(a.State()) {
			t.Errorf("ActorTick records %s, the state is %s", digest, digestHex(a.State()))
		}
	}
	if written != 4 { // ActorRestart, InitCall, InitResult, ActorTick
		t.Errorf("%d new events record a state, want 4", written)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, bufio.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
