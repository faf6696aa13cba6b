package actorhost

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// threeRuns runs the counter actor three times in a new directory (its
// state gains an "x" at every init) and returns the directory, the chain's
// bytes and the end offset of each record.
func threeRuns(t *testing.T, e *Engine, c *Component) (dir string, raw []byte, ends []int) {
	t.Helper()
	dir = t.TempDir()
	for range 3 {
		a := start(t, e, ActorConfig{Name: "counter", Component: c, Dir: dir})
		if err := a.Stop(context.Background(), "run over"); err != nil {
			t.Fatal(err)
		}
	}
	off := len(chain.Magic)
	for _, ev := range fileEvents(t, dir) {
		off += len(chain.EncodeRecord(&ev))
		ends = append(ends, off)
	}
	raw, err := os.ReadFile(actordir.ChainPath(dir))
	if err != nil || len(raw) != off {
		t.Fatalf("chain of %d bytes, records end at %d: %v", len(raw), off, err)
	}
	return dir, raw, ends
}

// TestStartRefusesAChainCutBackUnderItsState: a chain that is shorter than
// its saved state says it was (emptied, cut to its header, cut at a record
// boundary under the state), or damaged at its end in a way no crash
// tears, stops the start with a message naming both positions or the
// damage; only a tail a crash can tear is cut, and a chain cut back to
// before the last state's event (as a crash leaves it) resumes from the
// state it records last.
func TestStartRefusesAChainCutBackUnderItsState(t *testing.T) {
	e, logs := newTestEngine(t)
	c := compile(t, e, "counter")
	// Three runs: 0-5, 6-12, 13-19. Run 3 saved its state (slot a) for
	// event 18, its InitResult, as the chain wrote it: durable somewhere
	// from the end of run 2 (length 13) to event 17 (length 18), by where
	// the last sync or group commit happened to land among the run's
	// start, its log lines and its InitResult; {durable} is what slot a
	// says, and every case below holds for any of them.
	relink := func(b []byte, start, end int) {
		binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:end], crc32.MakeTable(crc32.Castagnoli)))
	}
	tests := map[string]struct {
		damage  func(raw []byte, ends []int) []byte // the new chain file; nil removes it
		legacy  bool                                // the directory's state is v0.1.0's state file, not slots
		wantErr string                              // "" starts
		state   string                              // the state after init, when it starts
		log     string
	}{
		"emptied": {damage: func([]byte, []int) []byte { return []byte{} },
			wantErr: "chain.log holds no events, but the saved state {dir}/state.a (saved before event 18) says it reached length {durable} durably: the chain was cut back or replaced"},
		"removed": {damage: func([]byte, []int) []byte { return nil },
			wantErr: "chain.log does not exist, but the saved state {dir}/state.a (saved before event 18) says it reached length {durable} durably"},
		"cut to its header": {damage: func(raw []byte, _ []int) []byte { return raw[:len(chain.Magic)] },
			wantErr: "chain.log holds no events, but the saved state {dir}/state.a (saved before event 18) says it reached length {durable} durably"},
		"cut at a record boundary under the state": {damage: func(raw []byte, ends []int) []byte { return raw[:ends[9]] },
			wantErr: "chain.log ends at length 10 (10 valid events), but the saved state {dir}/state.a (saved before event 18) says it reached length {durable} durably"},
		"torn under the state": {damage: func(raw []byte, ends []int) []byte { return raw[:ends[9]+20] },
			wantErr: "chain.log ends at length 10 (10 valid events), but the saved state"},
		"last record tampered, checksum recomputed": {damage: func(raw []byte, ends []int) []byte {
			b := append([]byte(nil), raw...)
			b[ends[19]-chain.HashSize-2] ^= 1
			relink(b, ends[18], ends[19])
			return b
		}, wantErr: "hash mismatch"},
		"last record's checksum damaged, content intact": {damage: func(raw []byte, ends []int) []byte {
			b := append([]byte(nil), raw...)
			b[ends[18]+5] ^= 1
			return b
		}, wantErr: "but the record there holds a whole event"},
		"v0.1.0's state file, chain emptied": {damage: func([]byte, []int) []byte { return []byte{} }, legacy: true,
			wantErr: "chain.log holds no events, but the state file {dir}/state of Troupe v0.1.0 (saved after the run's ActorStart and InitCall were durable) says it reached length 2 durably"},
		"v0.1.0's state file, chain cut to one event": {damage: func(raw []byte, ends []int) []byte { return raw[:ends[0]] }, legacy: true,
			wantErr: "chain.log ends at length 1 (1 valid events), but the state file {dir}/state of Troupe v0.1.0"},
		"v0.1.0's state file, chain cut at two events": {damage: func(raw []byte, ends []int) []byte { return raw[:ends[1]] }, legacy: true,
			state: "xxx"},
		"cut back to before the last state's event": {damage: func(raw []byte, ends []int) []byte { return raw[:ends[17]] },
			state: "xxx"},
		"torn last record": {damage: func(raw []byte, ends []int) []byte { return raw[:ends[19]-3] },
			state: "xxxx", log: "cut a torn tail off the actor's chain"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir, raw, ends := threeRuns(t, e, c)
			path := actordir.ChainPath(dir)
			slots, err := actordir.ReadStateSlots(dir, 1024)
			if d := slots[0].Saved.Durable; err != nil || !slots[0].Present || slots[0].Saved.Seq != 18 || d < 13 || d > 18 {
				t.Fatalf("slot a: %+v, %v; want run 3's state, for event 18, durable 13 to 18", slots[0], err)
			}
			durable := strconv.FormatUint(slots[0].Saved.Durable, 10)
			if tc.legacy {
				// As Troupe v0.1.0 left it: one state file, no slots.
				for _, name := range actordir.StateSlotFiles {
					if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
						t.Fatal(err)
					}
				}
				if err := actordir.WriteLegacyState(dir, actordir.State{HasState: true, Data: []byte("xx")}); err != nil {
					t.Fatal(err)
				}
			}
			damaged := tc.damage(raw, ends)
			if damaged == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: c, Dir: dir})
			if tc.wantErr != "" {
				want := strings.NewReplacer("{dir}", dir, "{durable}", durable).Replace(tc.wantErr)
				if a != nil || err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Start = %v, %v; want a refusal saying %q", a, err, want)
				}
				after, rerr := os.ReadFile(path)
				if damaged == nil && !errors.Is(rerr, os.ErrNotExist) || damaged != nil && string(after) != string(damaged) {
					t.Fatalf("the refused chain was changed (%d bytes, %v)", len(after), rerr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.Stop(context.Background(), "test over")
			if got := string(a.State()); got != tc.state {
				t.Fatalf("state %q, want %q", got, tc.state)
			}
			if tc.log != "" && !logs.contains(tc.log) {
				t.Errorf("no log line saying %q", tc.log)
			}
		})
	}
}
