package archive

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

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/objstore"
	"github.com/troupe-dev/troupe/internal/s3test"
)

// writerEnv makes the test binary a writer process (crashWriter) instead
// of running the tests.
const writerEnv = "TROUPE_ARCHIVE_CRASH_WRITER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		if err := crashWriter(spec); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashWriter claims the actor for an epoch, restores it, and archives
// ticks without end (two a segment), printing a line after each append,
// until it is killed. spec: endpoint bucket access secret epoch.
func crashWriter(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 5 {
		return fmt.Errorf("spec %q", spec)
	}
	epoch, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return err
	}
	st, err := objstore.New(objstore.Config{Endpoint: f[0], Bucket: f[1], Prefix: "troupe/archive", Region: "us-east-1",
		PathStyle: true, AccessKey: f[2], SecretKey: f[3]})
	if err != nil {
		return err
	}
	// Page at every append after an epoch's first, so that kills land
	// between a page's PUT and the manifest's too.
	pageSegments, inlineKeep = 1, 1
	ctx := context.Background()
	w, err := Claim(ctx, st, ClaimOptions{ActorID: actorID, Epoch: epoch})
	if err != nil {
		return err
	}
	r, err := Restore(ctx, st, actorID)
	if err != nil {
		return err
	}
	var c *actorChain
	count := 0
	if r.Length == 0 {
		c = &actorChain{}
		c.start("count=0")
	} else {
		c = continueFrom(chain.Link{Length: r.Length, Head: r.Head}, State{HasState: r.HasState, Data: r.State})
		if count, err = parseCount(r.State); err != nil {
			return err
		}
	}
	cut := 0
	out := bufio.NewWriter(os.Stdout)
	for {
		for range 2 {
			count++
			c.tick("count=" + strconv.Itoa(count))
		}
		if _, err := w.Append(ctx, c.cut(&cut), c.state); err != nil {
			return err
		}
		fmt.Fprintln(out, count)
		out.Flush()
	}
}

func parseCount(state []byte) (int, error) {
	n, ok := strings.CutPrefix(string(state), "count=")
	if !ok {
		return 0, fmt.Errorf("state %q is not a count", state)
	}
	return strconv.Atoi(n)
}

// A writer killed with SIGKILL at any point of its uploads leaves an
// archive that verifies, whose restored count never goes back, and which
// the next writer (a new epoch, or the same one started again) continues.
// TROUPE_TEST_LONG runs many more kills.
func TestKilledWritersLeaveAConsistentArchive(t *testing.T) {
	kills := 4
	if os.Getenv("TROUPE_TEST_LONG") != "" {
		kills = 60
	}
	srv := s3test.Start(t)
	st := srv.Bucket(t, "troupe/archive")
	ctx := testCtx(t)
	epoch, last := int64(1), -1
	for i := range kills {
		// Every other writer is a new assignment; the others are the same
		// assignment's host started again.
		if i%2 == 1 {
			epoch++
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s %d", writerEnv, srv.Endpoint, st.Bucket(), srv.AccessKey, srv.SecretKey, epoch))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it after a random number of appends (1-4), at once or a
		// moment into the next one: between any two of its PUTs.
		want := 1 + rand.IntN(4)
		lines := bufio.NewScanner(stdout)
		got, acked := 0, 0
		for got < want && lines.Scan() {
			got++
			if acked, err = strconv.Atoi(lines.Text()); err != nil {
				t.Fatal(err)
			}
		}
		if got < want {
			_ = cmd.Wait()
			t.Fatalf("writer %d (epoch %d) stopped after %d appends: %s", i, epoch, got, stderr.String())
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // where in the next append the kill lands
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		rep, err := Verify(ctx, st, actorID)
		if err != nil {
			t.Fatalf("after killing writer %d (epoch %d): %v", i, epoch, err)
		}
		r, err := Restore(ctx, st, actorID)
		if err != nil {
			t.Fatalf("restore after killing writer %d: %v", i, err)
		}
		n, err := parseCount(r.State)
		if err != nil {
			t.Fatal(err)
		}
		// An append that returned is in the archive: the count restored is
		// at least the last one the writer printed.
		if n < last || n < acked || r.Length != rep.Length {
			t.Fatalf("after writer %d: count %d (was %d, writer acknowledged %d), restored length %d, verified %d", i, n, last, acked, r.Length, rep.Length)
		}
		last = n
	}
	// The writers paged: the history runs through pages.
	paged := false
	for e := int64(1); e <= epoch; e++ {
		if m, err := loadManifest(ctx, st, actorID, e); err == nil && m.Page != nil {
			paged = true
		}
	}
	if !paged {
		t.Fatal("no epoch's manifest names a page: the writers did not page")
	}
}
