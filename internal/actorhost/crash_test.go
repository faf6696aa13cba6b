package actorhost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/diskbudget"
)

// The kill test re-executes this test binary as a process that floods an
// actor with state changes until it is killed.
const (
	crashChildEnv = "TROUPE_ACTORHOST_CRASH_CHILD"
	crashChunkEnv = "TROUPE_ACTORHOST_CRASH_CHUNK"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashChild starts the messenger actor in dir and sends it messages that
// change its state ("i" counts), as fast as its mailbox takes them, until
// it is killed. It prints "resumed N" once started (N the counter it
// resumed) and "count N" after each burst; the engine's log goes to
// stderr, where the parent counts the chains it cut back.
func crashChild(dir string) int {
	if s := os.Getenv(crashChunkEnv); s != "" {
		n, _ := strconv.Atoi(s)
		chain.SplitWrites(n)
	}
	ctx := context.Background()
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	e, err := NewEngine(ctx, EngineOptions{NoDiskCache: true, Logger: log, SystemInfo: fixedSystemInfo{}, Version: "test"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child engine:", err)
		return 2
	}
	wasm, err := os.ReadFile("testdata/messenger.wasm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	comp, err := e.Compile(ctx, wasm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child compile:", err)
		return 2
	}
	a, err := e.Start(ctx, ActorConfig{Name: "counter", Component: comp, Dir: dir, DiskBudget: &diskbudget.Limits{},
		TickInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child start:", err)
		return 2
	}
	fmt.Printf("resumed %d\n", counterValue(a.State()))
	for {
		for range 300 {
			// A full mailbox refuses at once; the request below drains it.
			_ = e.Send(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("i")})
		}
		resp, err := e.Request(ctx, Delivery{From: cli, Target: a.ID(), Msg: []byte("g")})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child request:", err)
			return 2
		}
		fmt.Printf("count %d\n", counterValue(resp))
	}
}

// counterValue is the messenger's counter (none reads as 0).
func counterValue(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// recordedStateOf returns the state an event records, if it is one that
// records the actor's state (an ok InitResult, an ActorTick, a
// HandlerResult).
func recordedStateOf(ev chain.Event) (stateRecord, bool) {
	switch ev.Kind {
	case chain.KindInitResult, chain.KindTick, chain.KindHandlerResult:
		return parseStateRecord(ev.Data)
	}
	return stateRecord{}, false
}

// resumeProblems checks every start in a chain: a run that resumes must
// resume exactly the last state the chain records before it, and one that
// does not must find none recorded.
func resumeProblems(evs []chain.Event) []string {
	var bad []string
	var last *stateRecord
	for i, ev := range evs {
		if r, ok := recordedStateOf(ev); ok {
			last = &r
			continue
		}
		if ev.Kind != chain.KindActorStart {
			continue
		}
		var start lifecycleData
		_ = json.Unmarshal(ev.Data, &start)
		if !start.Resumed {
			if last != nil {
				bad = append(bad, fmt.Sprintf("start at %d began afresh, but the chain records %s before it", ev.Seq, last.describe()))
			}
			continue
		}
		if i+1 == len(evs) || evs[i+1].Kind != chain.KindRestart {
			continue // killed before it recorded what it resumed
		}
		var rd restartData
		_ = json.Unmarshal(evs[i+1].Data, &rd)
		switch {
		case last == nil:
			bad = append(bad, fmt.Sprintf("start at %d resumed %s, but the chain records no state before it", ev.Seq, rd.stateRecord.describe()))
		case rd.HasState != last.HasState || rd.Sha256 != last.Sha256:
			bad = append(bad, fmt.Sprintf("start at %d resumed %s, but the chain's last state before it is %s", ev.Seq, rd.stateRecord.describe(), last.describe()))
		}
	}
	return bad
}

func readChainFile(t *testing.T, dir string) []chain.Event {
	t.Helper()
	var evs []chain.Event
	err := chain.ReadFile(actordir.ChainPath(dir), func(ev chain.Event) error {
		ev.Data = bytes.Clone(ev.Data)
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// killLane starts the flooding child in dir kills times and kills it with
// SIGKILL each time: one kill in five at a random moment of its start,
// the others once it has changed its state, a random moment later. Its
// writes go to the chain in small pieces of random size, so kills land
// inside them. It returns how many starts cut a torn write back.
func killLane(dir string, kills int, rng *rand.Rand) (cuts int, err error) {
	for k := range kills {
		n, err := killOnce(dir, rng)
		if err != nil {
			return cuts, fmt.Errorf("kill %d: %w", k, err)
		}
		cuts += n
	}
	return cuts, nil
}

func killOnce(dir string, rng *rand.Rand) (cuts int, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashChunkEnv+"="+strconv.Itoa(16+rng.IntN(4096)))
	// Read only once the child is gone: Wait returns after exec's copy
	// into it has ended.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	counted := make(chan struct{})
	go func() {
		// Reads every line until the child is gone, so it never blocks
		// on its output.
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			if !once && strings.HasPrefix(sc.Text(), "count ") {
				once = true
				close(counted)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var problem string
	if rng.IntN(5) == 0 {
		// Anywhere in the start: the chain's recovery, a cut, init.
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
	} else {
		select {
		case <-counted:
			time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		case <-time.After(60 * time.Second):
			problem = "no count within 60s"
		case err := <-exited:
			exited <- err
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = <-exited
	var ee *exec.ExitError
	switch {
	case problem != "":
		return 0, fmt.Errorf("%s:\n%s", problem, stderr.String())
	case !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL:
		return 0, fmt.Errorf("the child ended by itself (%w):\n%s", err, stderr.String())
	}
	return strings.Count(stderr.String(), "cut off the actor's chain the events of a write"), nil
}

// TestKillWhileTheStateChangesAtFullRate kills, with SIGKILL, a process
// whose actor changes its state with every message, tens of thousands a
// second, so that many changes ride each write of the chain and only the
// newest is saved; its chain writes in small pieces, so kills land inside
// writes. Every restart must resume from exactly the state the chain
// records last (a start that finds a write cut short after an unsaved
// state cuts it back: statefile.go), the chain must verify, and a last
// clean start must resume what the chain records last. 20 kills here, 400
// in make test-long.
func TestKillWhileTheStateChangesAtFullRate(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	lanes, kills := 2, 10
	if os.Getenv("TROUPE_TEST_LONG") != "" {
		lanes, kills = 4, 100
	}
	dirs := make([]string, lanes)
	cuts := make([]int, lanes)
	var wg sync.WaitGroup
	for i := range dirs {
		dirs[i] = t.TempDir()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
		wg.Go(func() {
			var err error
			if cuts[i], err = killLane(dirs[i], kills, rng); err != nil {
				t.Errorf("lane %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	e, _ := newTestEngine(t)
	comp := compile(t, e, "messenger")
	total := 0
	for i, dir := range dirs {
		total += cuts[i]
		a, err := e.Start(context.Background(), ActorConfig{Name: "counter", Component: comp, Dir: dir, TickInterval: -1})
		if err != nil {
			t.Fatalf("lane %d: the start after the last kill: %v", i, err)
		}
		got := digestHex(a.State())
		if err := a.Stop(context.Background(), "test over"); err != nil {
			t.Fatal(err)
		}
		rep, err := chain.VerifyFile(actordir.ChainPath(dir))
		if err != nil || !rep.OK() {
			t.Fatalf("lane %d: the chain after %d kills: %+v, %v", i, kills, rep, err)
		}
		evs := readChainFile(t, dir)
		for _, p := range resumeProblems(evs) {
			t.Errorf("lane %d: %s", i, p)
		}
		// The clean run resumed what the chain recorded last before it.
		begin := 0
		for j, ev := range evs {
			if ev.Kind == chain.KindActorStart {
				begin = j
			}
		}
		var last *stateRecord
		for _, ev := range evs[:begin] {
			if r, ok := recordedStateOf(ev); ok {
				last = &r
			}
		}
		if last == nil || !last.HasState || last.Sha256 != got {
			t.Errorf("lane %d: the clean start resumed state sha256:%s, the chain records %v last before it", i, got[:12], last)
		}
	}
	t.Logf("%d kills: %d starts cut back a write a crash had cut short after an unsaved state", lanes*kills, total)
}
