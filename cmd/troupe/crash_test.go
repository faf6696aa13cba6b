package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// Crash consistency of `troupe run`, tested on the real binary: kill -9 at
// random moments, and two runs racing for one fresh directory. `make test`
// runs short loops; `make test-long` (TROUPE_TEST_LONG=1) runs the long
// ones.

// longTests reports whether the long versions of the loops run.
func longTests() bool { return os.Getenv("TROUPE_TEST_LONG") != "" }

// stateOf is the state an event records: InitResult and ActorTick carry
// the state after the call (v0.1.0's ticks name the digest stateDigest),
// ActorRestart the state a run resumed from.
type stateOf struct {
	OK       *bool  `json:"ok"`
	HasState *bool  `json:"hasState"`
	Sha256   string `json:"stateSha256"`
	Digest   string `json:"stateDigest"`
}

func (s stateOf) String() string {
	if s.HasState == nil || !*s.HasState {
		return "no state"
	}
	return "state " + s.Sha256[:min(12, len(s.Sha256))]
}

func (s stateOf) same(o stateOf) bool {
	return s.HasState != nil && o.HasState != nil && *s.HasState == *o.HasState && s.Sha256 == o.Sha256
}

// recordedState decodes the state ev records, if it is an event that
// records a new state of the actor (an ok InitResult, an ActorTick).
func recordedState(ev chain.Event) (stateOf, bool) {
	if ev.Kind != chain.KindInitResult && ev.Kind != chain.KindTick {
		return stateOf{}, false
	}
	var s stateOf
	if json.Unmarshal(ev.Data, &s) != nil || s.HasState == nil || (s.OK != nil && !*s.OK) {
		return stateOf{}, false
	}
	if s.Sha256 == "" {
		s.Sha256 = s.Digest
	}
	return s, true
}

// resumeMismatches checks every start in a chain: a run that resumes
// (ActorStart followed by ActorRestart) must resume from exactly the last
// state the chain recorded before it, and a run that does not resume must
// find no state recorded before it. It returns one line per start that
// broke this.
func resumeMismatches(evs []chain.Event) []string {
	var bad []string
	var last *stateOf
	for i, ev := range evs {
		if s, ok := recordedState(ev); ok {
			last = &s
			continue
		}
		if ev.Kind != chain.KindActorStart {
			continue
		}
		var start struct {
			Resumed bool `json:"resumed"`
		}
		_ = json.Unmarshal(ev.Data, &start)
		if !start.Resumed {
			if last != nil {
				bad = append(bad, fmt.Sprintf("start at seq %d began from the initial state, but the chain records %s before it", ev.Seq, *last))
			}
			continue
		}
		if i+1 == len(evs) || evs[i+1].Kind != chain.KindRestart {
			continue // killed before it recorded what it resumed
		}
		var resumed stateOf
		_ = json.Unmarshal(evs[i+1].Data, &resumed)
		switch {
		case last == nil:
			bad = append(bad, fmt.Sprintf("start at seq %d resumed %s, but the chain records no state before it", ev.Seq, resumed))
		case !resumed.same(*last):
			bad = append(bad, fmt.Sprintf("start at seq %d resumed %s, but the last state the chain records before it is %s", ev.Seq, resumed, *last))
		}
	}
	return bad
}

// readChain reads the chain in dir, nil if it can't be read yet.
func readChain(dir string) []chain.Event {
	var evs []chain.Event
	_ = chain.ReadFile(actordir.ChainPath(dir), func(ev chain.Event) error {
		ev.Data = append([]byte(nil), ev.Data...)
		evs = append(evs, ev)
		return nil
	})
	return evs
}

// runsAndTicks counts the runs in a chain (ActorStart events) and the
// ActorTick events of the last one.
func runsAndTicks(evs []chain.Event) (runs, ticks int) {
	for _, ev := range evs {
		switch ev.Kind {
		case chain.KindActorStart:
			runs, ticks = runs+1, 0
		case chain.KindTick:
			ticks++
		}
	}
	return runs, ticks
}

// killLane runs a ticking actor in dir kills times, each run killed with
// SIGKILL at a random moment: one run in five while it starts, the others
// after it ticked, at a random point of a tick interval. It returns how
// many kills landed after a tick.
func killLane(t *testing.T, bin, yaml, dir string, kills int, rng *rand.Rand) (afterTicks int) {
	for k := range kills {
		runsBefore, _ := runsAndTicks(readChain(dir))
		// Lanes run at once: each serves its own socket.
		cmd := exec.Command(bin, "run", "--tick", "100ms", "--chain-dir", dir, "--socket", dir+".sock", yaml)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Errorf("kill %d: %v", k, err)
			return afterTicks
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		early := rng.IntN(5) == 0
		if early {
			// Anywhere in the start: the engine, the chain's recovery,
			// init and its saved state.
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		} else {
			deadline := time.Now().Add(60 * time.Second)
			for {
				if runs, ticks := runsAndTicks(readChain(dir)); runs > runsBefore && ticks > 0 {
					break
				}
				select {
				case err := <-exited:
					t.Errorf("kill %d: troupe run exited by itself (%v) before it ticked:\n%s", k, err, stderr.String())
					return afterTicks
				default:
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					<-exited
					t.Errorf("kill %d: no tick within 60s:\n%s", k, stderr.String())
					return afterTicks
				}
				time.Sleep(5 * time.Millisecond)
			}
			afterTicks++
			time.Sleep(time.Duration(rng.IntN(120)) * time.Millisecond)
		}
		select {
		case err := <-exited:
			t.Errorf("kill %d: troupe run exited by itself (%v):\n%s", k, err, stderr.String())
			return afterTicks
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	return afterTicks
}

// TestKillDuringTicksResumesTheRecordedState kills a ticking `troupe run`
// (its state counts ticks, so it changes at every one) at random moments
// and restarts it: every restart must resume from exactly the last state
// the chain records, never from one the chain does not explain, and the
// chain must verify. 50 kills here, 500 in make test-long.
func TestKillDuringTicksResumesTheRecordedState(t *testing.T) {
	bin := troupeBinary(t)
	lanes, kills := 5, 10
	if longTests() {
		lanes, kills = 10, 50
	}
	yaml := writeTickYAML(t, 'c')
	dirs := make([]string, lanes)
	var wg sync.WaitGroup
	var mu sync.Mutex
	afterTicks := 0
	for i := range dirs {
		dirs[i] = t.TempDir()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
		wg.Go(func() {
			n := killLane(t, bin, yaml, dirs[i], kills, rng)
			mu.Lock()
			afterTicks += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	bad := 0
	for _, dir := range dirs {
		// One clean run to end each lane: it resumes too, and closes the
		// chain so that it verifies without a live writer.
		out, err := exec.Command(bin, "run", "--once", "--chain-dir", dir, yaml).CombinedOutput()
		if err != nil {
			t.Errorf("the run after the last kill: %v\n%s", err, out)
			continue
		}
		rep, err := chain.VerifyFile(actordir.ChainPath(dir))
		if err != nil || !rep.OK() {
			t.Errorf("the chain after %d kills: %+v, %v", kills, rep, err)
		}
		mismatches := resumeMismatches(readChain(dir))
		bad += len(mismatches)
		for _, m := range mismatches {
			t.Error(m)
		}
	}
	t.Logf("%d kills (%d after a tick): %d restarts resumed a state the chain did not record last", lanes*kills, afterTicks, bad)
}

// TestTwoRunsOnAFreshDirectory starts two `troupe run` at once on a
// directory that does not exist yet: one of them owns it, and the chain,
// the identity and every event in the chain name one actor id.
func TestTwoRunsOnAFreshDirectory(t *testing.T) {
	bin := troupeBinary(t)
	races := 20
	if longTests() {
		races = 200
	}
	module := testModule("counter")
	bad, locked := 0, 0
	for i := range races {
		dir := filepath.Join(t.TempDir(), "actor")
		var wg sync.WaitGroup
		results := make([]string, 2)
		codes := make([]int, 2)
		cmds := make([]*exec.Cmd, 2)
		for j := range cmds {
			cmds[j] = exec.Command(bin, "run", "--once", "--name", "counter", "--chain-dir", dir, module)
		}
		for j, cmd := range cmds {
			wg.Go(func() {
				out, err := cmd.CombinedOutput()
				results[j] = string(out)
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					codes[j] = ee.ExitCode()
				} else if err != nil {
					codes[j] = -1
				}
			})
		}
		wg.Wait()
		for j := range cmds {
			// The loser may find the directory locked (exit 2, saying
			// so) or, if the winner was done, resume after it.
			if codes[j] != 0 && (codes[j] != exitUsage || !strings.Contains(results[j], "open by another writer")) {
				t.Errorf("race %d, run %d: exit %d\n%s", i, j, codes[j], results[j])
			}
			if codes[j] != 0 {
				locked++
			}
		}
		if codes[0] != 0 && codes[1] != 0 {
			t.Errorf("race %d: neither run succeeded", i)
		}
		if problems := idProblems(dir); len(problems) > 0 {
			bad++
			for _, p := range problems {
				t.Errorf("race %d: %s", i, p)
			}
		}
	}
	t.Logf("%d races (%d runs found the directory locked): %d left the directory with more than one actor id", races, locked, bad)
}

// TestRunRefusesAChainCutBackUnderItsState: `troupe run` on a directory
// whose chain is shorter than its saved state says exits 2 with a message
// naming both positions, and changes nothing.
func TestRunRefusesAChainCutBackUnderItsState(t *testing.T) {
	tests := map[string]struct {
		keep   int // bytes of the chain kept
		events int // or, when keep < 0, the events kept
		says   string
	}{
		"emptied":           {keep: 0, says: "holds no events, but the saved state"},
		"cut to its header": {keep: len(chain.Magic), says: "holds no events, but the saved state"},
		"cut at a record boundary": {keep: -1, events: 3,
			says: "ends at length 3 (3 valid events), but the saved state"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for range 2 {
				if _, stderr, code := runCLI(t, "run", "--once", "--chain-dir", dir, testModule("counter")); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
			}
			path := actordir.ChainPath(dir)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.keep < 0 {
				tc.keep = len(chain.Magic)
				for _, ev := range readChain(dir)[:tc.events] {
					tc.keep += len(chain.EncodeRecord(&ev))
				}
			}
			if err := os.WriteFile(path, raw[:tc.keep], 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runCLI(t, "run", "--once", "--chain-dir", dir, testModule("counter"))
			if code != exitUsage || !strings.Contains(stderr, tc.says) || !strings.Contains(stderr, "durably: the chain was cut back") {
				t.Fatalf("exit %d, stderr %q; want exit 2 saying %q", code, stderr, tc.says)
			}
			if after, _ := os.ReadFile(path); len(after) != tc.keep {
				t.Errorf("the chain is now %d bytes", len(after))
			}
		})
	}
}

// idProblems lists how the directory's identity and the ids in its chain
// disagree.
func idProblems(dir string) []string {
	id, ok, err := actordir.ReadIdentity(dir)
	if err != nil || !ok {
		return []string{fmt.Sprintf("identity: %v, %v", ok, err)}
	}
	var problems []string
	ids := map[string]bool{}
	evs := readChain(dir)
	if len(evs) == 0 {
		problems = append(problems, "the chain is empty")
	}
	for _, ev := range evs {
		var d struct {
			ActorID string `json:"actorID"`
		}
		if ev.Kind != chain.KindActorStart && ev.Kind != chain.KindInitCall {
			continue
		}
		if json.Unmarshal(ev.Data, &d) != nil || d.ActorID == "" {
			problems = append(problems, fmt.Sprintf("%s at seq %d names no actor id", ev.Kind, ev.Seq))
			continue
		}
		ids[d.ActorID] = true
		if d.ActorID != id.ID {
			problems = append(problems, fmt.Sprintf("%s at seq %d is actor %s, actor.json says %s", ev.Kind, ev.Seq, d.ActorID, id.ID))
		}
	}
	if len(ids) > 1 {
		problems = append(problems, fmt.Sprintf("%d actor ids in one chain", len(ids)))
	}
	return problems
}
