package archiver

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// hostEnv makes the test binary a host process (crashHost) instead of
// running the tests.
const hostEnv = "TROUPE_ARCHIVER_CRASH_HOST"

func TestMain(m *testing.M) {
	for env, host := range map[string]func(string) error{hostEnv: crashHost, rpHostEnv: rpHost} {
		if spec := os.Getenv(env); spec != "" {
			if err := host(spec); err != nil {
				fmt.Fprintln(os.Stderr, "host:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// crashHost does what a host does for one actor, until it is killed: it
// uploads what an earlier run left in dir, claims epoch, runs the ticking
// actor on dir and ships its chain with a short recovery point and small
// segments, printing the archived length each time it grows. spec:
// endpoint bucket access secret epoch dir.
func crashHost(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 6 {
		return fmt.Errorf("spec %q", spec)
	}
	epoch, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return err
	}
	dir := f[5]
	st, err := objstore.New(objstore.Config{Endpoint: f[0], Bucket: f[1], Prefix: "troupe/archive", Region: "us-east-1",
		PathStyle: true, AccessKey: f[2], SecretKey: f[3]})
	if err != nil {
		return err
	}
	// Writes land inside records: a kill tears the chain's tail too.
	chain.SplitWrites(7)
	ctx := context.Background()
	ar, err := New(Options{RecoveryPoint: 150 * time.Millisecond, SegmentBytes: 2 << 10, Logger: logr.Discard()})
	if err != nil {
		return err
	}
	go ar.Run(ctx)
	if _, err := ar.ShipLeftovers(ctx, st, dir, "host", "node-a", 0); err != nil {
		return fmt.Errorf("leftovers: %w", err)
	}
	w, err := archive.Claim(ctx, st, archive.ClaimOptions{ActorID: actorID, Epoch: epoch, Host: "host", Node: "node-a"})
	if err != nil {
		return err
	}
	e := newEngine(nopTB{})
	a := startTicker(nopTB{}, e, dir, 100*time.Millisecond)
	s, err := ar.Ship(ctx, w, ActorSource(a), logr.Discard(), nil)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	last := s.Archived()
	for {
		if n := s.Archived(); n != last {
			last = n
			fmt.Fprintln(out, n)
			out.Flush()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// nopTB lets the test helpers run in the host process, which has no
// testing.T: a failure there is fatal.
type nopTB struct{ testing.TB }

func (nopTB) Helper()           {}
func (nopTB) Cleanup(func())    {}
func (nopTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(1) }
func (nopTB) Fatalf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, f+"\n", args...)
	os.Exit(1)
}

// A host killed with SIGKILL at any point of its uploads (and of its
// chain's writes) leaves an archive that verifies, that holds at least
// what it acknowledged, and that the next host on the node (the same
// assignment started again, or a new one) continues, uploading what the
// killed one left. TROUPE_TEST_LONG runs many more kills.
func TestKilledHostsLeaveAConsistentArchive(t *testing.T) {
	kills := 4
	if os.Getenv("TROUPE_TEST_LONG") != "" {
		kills = 60
	}
	srv, st := newStore(t)
	bucket := st.Store.(*objstore.S3).Bucket()
	dir := t.TempDir()
	ctx := testCtx(t)
	epoch := int64(1)
	var last uint64
	for i := range kills {
		if i%2 == 1 {
			epoch++
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s %d %s", hostEnv, srv.Endpoint, bucket, srv.AccessKey, srv.SecretKey, epoch, dir))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		want := 1 + rand.IntN(4)
		lines := bufio.NewScanner(stdout)
		got := 0
		var acked uint64
		for got < want && lines.Scan() {
			got++
			if acked, err = strconv.ParseUint(lines.Text(), 10, 64); err != nil {
				t.Fatal(err)
			}
		}
		if got < want {
			_ = cmd.Wait()
			t.Fatalf("host %d (epoch %d) stopped after %d uploads: %s", i, epoch, got, stderr.String())
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond) // where in the next upload the kill lands
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		rep, err := archive.Verify(ctx, st, actorID)
		if err != nil {
			t.Fatalf("after killing host %d (epoch %d): %v", i, epoch, err)
		}
		if rep.Length < acked || rep.Length < last {
			t.Fatalf("after host %d: the archive holds %d events, the host acknowledged %d, it held %d before", i, rep.Length, acked, last)
		}
		last = rep.Length
	}
	// The archive is a prefix of the chain on the node: the last host's
	// leftovers go up, and the whole history verifies to the node's head.
	ar := newArchiver(t, Options{RecoveryPoint: time.Hour, SegmentBytes: 8 << 20})
	res, err := ar.ShipLeftovers(ctx, st, dir, "host", "node-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	local, err := chain.VerifyFile(dir + "/" + chain.FileName)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := archive.Verify(ctx, st, actorID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Head != local.Head || rep.Length != local.Length || res.To != local.Length {
		t.Fatalf("after the leftovers the archive ends at %d/%s (%+v), the node's chain at %d/%s", rep.Length, rep.Head.Short(), res, local.Length, local.Head.Short())
	}
}
