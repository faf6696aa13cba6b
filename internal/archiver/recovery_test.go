package archiver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// The recovery point the test measures: host.DefaultArchiveRecoveryPoint
// (internal/host imports this package, so it is not imported here), and
// the host's default segment size, so that only age seals.
const (
	defaultRecoveryPoint = 10 * time.Second
	defaultSegmentBytes  = 8 << 20
	// recoverySlack is what a kill may lose beyond the recovery point on
	// a loaded 2-core machine: a seal comes when the oldest unarchived
	// event is 75-90 % of the recovery point old, found by a scan every
	// 500 ms, and its upload (three small PUTs and a LIST on loopback)
	// must finish before the kill; the rest is a starved process's
	// scheduling (docs/performance.md, the host's uploads).
	recoverySlack = 5 * time.Second
	// recoveryTick is the actors' tick interval: the loss is measured to
	// it.
	recoveryTick = 100 * time.Millisecond
)

// rpHostEnv makes the test binary a host of several ticking actors
// (rpHost) instead of running the tests.
const rpHostEnv = "TROUPE_ARCHIVER_RP_HOST"

// recoveryActorID is the id of the i-th actor of host h.
func recoveryActorID(h, i int) string { return fmt.Sprintf("0c0ffee0-0000-4000-8000-%06d%06d", h, i) }

// rpHost runs n ticking actors as a host does, each claimed for epoch 1
// and shipped with the default recovery point and segment size, prints
// "ready" once all ship, and runs until it is killed. spec: endpoint
// bucket access secret h n dir.
func rpHost(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 7 {
		return fmt.Errorf("spec %q", spec)
	}
	h, err1 := strconv.Atoi(f[4])
	n, err2 := strconv.Atoi(f[5])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("spec %q", spec)
	}
	st, err := objstore.New(objstore.Config{Endpoint: f[0], Bucket: f[1], Prefix: "troupe/archive", Region: "us-east-1",
		PathStyle: true, AccessKey: f[2], SecretKey: f[3]})
	if err != nil {
		return err
	}
	ctx := context.Background()
	ar, err := New(Options{RecoveryPoint: defaultRecoveryPoint, SegmentBytes: defaultSegmentBytes, Logger: logr.Discard()})
	if err != nil {
		return err
	}
	go ar.Run(ctx)
	e := newEngine(nopTB{})
	for i := range n {
		id := recoveryActorID(h, i)
		w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: id, Epoch: 1, Host: "host", Node: "node-a"})
		if err != nil {
			return err
		}
		a := startTickerID(nopTB{}, e, filepath.Join(f[6], id), id, recoveryTick)
		if _, err := ar.Ship(ctx, w, ActorSource(a), logr.Discard(), nil); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	select {}
}

// lostAge is what a kill lost of one actor.
type lostAge struct {
	id string
	// age is the time from the last archived event to the kill; lost the
	// events the node holds beyond it.
	age  time.Duration
	lost uint64
}

// A host killed at a random moment loses from the archive at most the
// recovery point (10 s, the default) plus a slack: the time between the
// last event the archive holds and the kill, from the events' own times,
// measured for ticking actors each first sealed at its own jittered
// moment. The archive restores to a verified head and state, and the
// node's chain holds every lost event (leftovers upload them when it is
// back). TROUPE_TEST_LONG runs many more kills. The figures are logged
// (docs/performance.md, the host's uploads).
func TestRecoveryPointOfAKilledHost(t *testing.T) {
	rounds, hosts, actors := 1, 2, 3
	if os.Getenv("TROUPE_TEST_LONG") != "" {
		rounds = 8
	}
	srv, st := newStore(t)
	bucket := st.Store.(*objstore.S3).Bucket()
	ctx := testCtx(t)
	leftovers := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: defaultSegmentBytes})
	e := newEngine(t)
	var ages []lostAge
	for r := range rounds {
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, hosts)
		for h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := killOneHost(ctx, t, srv.Endpoint, bucket, srv.AccessKey, srv.SecretKey, st, leftovers, e, r*hosts+h, actors)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ages = append(ages, got...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	slices.SortFunc(ages, func(a, b lostAge) int { return int(a.age - b.age) })
	var lost []uint64
	for _, a := range ages {
		lost = append(lost, a.lost)
	}
	slices.Sort(lost)
	med, worst := ages[len(ages)/2], ages[len(ages)-1]
	t.Logf("recovery point %s: %d kills of a host, %d actors ticking every %s: the archive lacked the last %s of events (median), %s at most (%s); events lost: median %d, at most %d",
		defaultRecoveryPoint, rounds*hosts, len(ages), recoveryTick, med.age.Round(10*time.Millisecond), worst.age.Round(10*time.Millisecond),
		worst.id, lost[len(lost)/2], lost[len(lost)-1])
	if worst.age > defaultRecoveryPoint+recoverySlack {
		t.Fatalf("actor %s lost %s of events (%d events), more than the recovery point %s + %s", worst.id, worst.age, worst.lost, defaultRecoveryPoint, recoverySlack)
	}
}

// killOneHost runs host h with n actors, kills it with SIGKILL at a
// random moment between 1.1 and 2.5 recovery points after they started
// shipping, and measures each actor's loss. The first actor moves: it
// runs on e from the archive, and its chain says where it resumed and
// what the archive lacked. Then the node is back: the leftovers go up
// (through ar), and the archive ends at the node's head.
func killOneHost(ctx context.Context, t *testing.T, endpoint, bucket, access, secret string, st objstore.Store, ar *Archiver, e *actorhost.Engine, h, n int) ([]lostAge, error) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s %d %d %s", rpHostEnv, endpoint, bucket, access, secret, h, n, dir))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	ready := make(chan bool, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		ready <- lines.Scan() && lines.Text() == "ready"
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			killed = true
			return nil, fmt.Errorf("host %d did not start: %s", h, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		return nil, fmt.Errorf("host %d not ready after 2 minutes: %s", h, stderr.String())
	}
	// The kill's moment is what is under test: a random one, not a wait
	// for something.
	time.Sleep(defaultRecoveryPoint*11/10 + rand.N(defaultRecoveryPoint*14/10))
	at := time.Now()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	killed = true

	var out []lostAge
	for i := range n {
		id := recoveryActorID(h, i)
		var last chain.Event
		tickEvents := map[uint64]uint32{} // seq -> tick events up to it
		var seen uint32
		rep, err := archive.VerifyEach(ctx, st, id, func(e chain.Event) error {
			last = e
			if e.Kind == chain.KindTick {
				seen++
			}
			tickEvents[e.Seq] = seen
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("actor %s after the kill: %w", id, err)
		}
		res, err := archive.Restore(ctx, st, id)
		if err != nil {
			return nil, fmt.Errorf("restoring %s: %w", id, err)
		}
		if res.Head != rep.Head || res.Length != rep.Length || !res.HasState || res.StateEvent == nil {
			return nil, fmt.Errorf("restoring %s: %+v, the history ends at %d/%s", id, res, rep.Length, rep.Head.Short())
		}
		// The state restored counts the ticks the archive holds up to the
		// event that recorded it.
		if got, want := ticks(res.State), tickEvents[*res.StateEvent]; got != want || want == 0 {
			return nil, fmt.Errorf("restoring %s: the state counts %d ticks, the archive holds %d up to event %d", id, got, want, *res.StateEvent)
		}
		if i == 0 {
			if err := resumeFromArchive(ctx, t, e, id, res, filepath.Join(dir, id)); err != nil {
				return nil, err
			}
		}
		back, err := ar.ShipLeftovers(ctx, st, filepath.Join(dir, id), "host", "node-a", 0)
		if err != nil {
			return nil, fmt.Errorf("the leftovers of %s: %w", id, err)
		}
		after, err := archive.Verify(ctx, st, id)
		if err != nil {
			return nil, fmt.Errorf("%s after the leftovers: %w", id, err)
		}
		if back.From != rep.Length || after.Length != back.To || after.Length < rep.Length {
			return nil, fmt.Errorf("%s: the archive held %d events, the leftovers %+v, then %+v", id, rep.Length, back, after)
		}
		out = append(out, lostAge{id: id, age: at.Sub(time.Unix(0, last.Time)), lost: after.Length - rep.Length})
	}
	return out, nil
}

// resumeFromArchive starts actor id on e from what the archive restored,
// as a host does after a move (internal/host/restore.go), naming the head
// the dead node's chain (in oldDir) reached as lost, and checks that the
// new chain's SegmentStart says where it resumed (the archive's head and
// length, the state's event) and which events were lost, and that the
// count goes on from the restored state.
func resumeFromArchive(ctx context.Context, t *testing.T, e *actorhost.Engine, id string, res *archive.Restored, oldDir string) error {
	var nodeHead chain.Event
	// A kill may tear the file's last record: the events before it are
	// what the node reached.
	_ = chain.ReadFile(filepath.Join(oldDir, chain.FileName), func(ev chain.Event) error { nodeHead = ev; return nil })
	if nodeHead.Seq+1 < res.Length {
		return fmt.Errorf("%s: the node's chain ends at %d, before the archive's %d", id, nodeHead.Seq+1, res.Length)
	}
	wasm, err := os.ReadFile(filepath.Join("..", "actorhost", "testdata", "tick.wasm"))
	if err != nil {
		return err
	}
	c, err := e.Compile(ctx, wasm)
	if err != nil {
		return err
	}
	cont := &actorhost.ChainLink{Head: res.Head, Length: res.Length, Node: "node-a",
		Restored: &actorhost.RestoredState{Epoch: res.Epoch, Event: res.StateEvent, HasState: res.HasState, State: res.State, Sha256: res.StateSha256}}
	if nodeHead.Seq+1 > res.Length {
		cont.Lost = &actorhost.ChainLink{Head: nodeHead.Hash, Length: nodeHead.Seq + 1, Node: "node-a"}
	}
	dir := t.TempDir()
	a, err := e.Start(ctx, actorhost.ActorConfig{ID: id, Name: "ticker", Component: c, Dir: dir,
		InitialState: make([]byte, 16), TickInterval: recoveryTick, Continue: cont})
	if err != nil {
		return fmt.Errorf("resuming %s from the archive: %w", id, err)
	}
	defer func() { _ = a.Stop(context.Background(), "test over") }()
	restored := ticks(res.State)
	deadline := time.Now().Add(time.Minute)
	for ticks(a.State()) <= restored {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no tick after resuming from %d ticks (now %d)", id, restored, ticks(a.State()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var first *chain.Event
	if err := chain.ReadFile(filepath.Join(dir, chain.FileName), func(ev chain.Event) error {
		if first == nil {
			ev.Data = slices.Clone(ev.Data) // the reader reuses its buffer
			first = &ev
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s: the resumed chain: %w", id, err)
	}
	if first == nil {
		return fmt.Errorf("%s: the resumed chain is empty", id)
	}
	var start struct {
		PreviousHead   string `json:"previousHead"`
		PreviousLength uint64 `json:"previousLength"`
		StateRestored  bool   `json:"stateRestored"`
		Archive        struct {
			StateEvent *uint64 `json:"stateEvent"`
		} `json:"archive"`
		Gap *struct {
			From, To uint64
			LostHead string `json:"lostHead"`
		} `json:"gap"`
	}
	if err := json.Unmarshal(first.Data, &start); err != nil {
		return fmt.Errorf("%s: SegmentStart %s: %w", id, first.Data, err)
	}
	wantGap := cont.Lost != nil
	if first.Kind != chain.KindSegmentStart || first.Seq != res.Length || first.Parent != res.Head ||
		start.PreviousHead != res.Head.String() || start.PreviousLength != res.Length || !start.StateRestored ||
		start.Archive.StateEvent == nil || *start.Archive.StateEvent != *res.StateEvent ||
		(start.Gap != nil) != wantGap || wantGap && (start.Gap.From != res.Length || start.Gap.To != nodeHead.Seq+1 || start.Gap.LostHead != nodeHead.Hash.String()) {
		return fmt.Errorf("%s resumed from the archive's %d/%s (node at %d) with %s %+v (%s)", id, res.Length, res.Head.Short(), nodeHead.Seq+1, first.Kind, start, first.Data)
	}
	return nil
}
