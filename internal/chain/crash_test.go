package chain

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var crashIterations = flag.Int("chain.crash", 30, "kill -9 iterations of TestCrashRecovery")

// The crash test re-executes this test binary as the appending child.
const (
	crashChildEnv = "TROUPE_CHAIN_CRASH_CHILD"
	crashChunkEnv = "TROUPE_CHAIN_CRASH_CHUNK"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

// crashEvent is the deterministic event at seq, so the parent can check that
// whatever survives a crash is exactly a prefix of what was appended.
func crashEvent(seq uint64) (Kind, string, []byte) {
	kind := KindLog
	if seq%97 == 0 {
		kind = KindInitResult // lifecycle: fsynced before Append returns
	}
	n := int(seq*7919%300) + 1
	data := make([]byte, 0, n+20)
	data = strconv.AppendUint(data, seq, 10)
	for len(data) < n {
		data = append(data, byte('a'+seq%26))
	}
	return kind, "op-" + strconv.FormatUint(seq%5, 10), data
}

// crashChild appends until killed, printing "synced N" after each Sync so the
// parent knows what must survive.
func crashChild(path string) int {
	if s := os.Getenv(crashChunkEnv); s != "" {
		writeChunk, _ = strconv.Atoi(s)
	}
	c, rec, err := Open(path, Options{SyncInterval: time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	fmt.Printf("open %d %d\n", rec.Events, rec.DroppedBytes)
	for i := 0; ; i++ {
		_, n := c.Head()
		if _, err := c.Append(crashEvent(n)); err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			return 2
		}
		if i%50 == 49 {
			if err := c.Sync(); err != nil {
				fmt.Fprintln(os.Stderr, "child sync:", err)
				return 2
			}
			_, n := c.Head()
			fmt.Printf("synced %d\n", n)
		}
	}
}

// TestCrashRecovery kills an appending child with SIGKILL at random moments,
// many times, and checks after each kill that the chain reopens as a valid
// prefix of what was appended, holding at least what was synced, and that it
// can be extended. Writes are split into small pieces in the child so that
// kills land inside records, not only between them.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), FileName)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var torn, total int
	var durable uint64
	for iter := range *crashIterations {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashChunkEnv+"="+strconv.Itoa(1+rng.IntN(200)))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A child that stops reporting must not hang the test: a watchdog
		// kills it, which ends the scan below.
		watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
		t.Cleanup(func() {
			watchdog.Stop()
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		// Wait for a random amount of progress, then kill without warning.
		target := 1 + rng.IntN(8)
		sc := bufio.NewScanner(out)
		seen := 0
		var synced uint64
		for seen < target && sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "synced "); ok {
				seen++
				synced, _ = strconv.ParseUint(n, 10, 64)
			}
		}
		if seen < target {
			cmd.Wait()
			t.Fatalf("iteration %d: child stopped early: %v\n%s", iter, sc.Err(), stderr.String())
		}
		// Jitter, not a wait for anything: it spreads the kills over the
		// child's whole loop, writes included, instead of just after a sync.
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("iteration %d: child ended with %v, not by SIGKILL\n%s", iter, err, stderr.String())
		}
		if synced > durable {
			durable = synced
		}

		c, rec, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("iteration %d: reopening after kill -9: %v", iter, err)
		}
		if rec.DroppedBytes > 0 {
			torn++
		}
		total++
		if rec.Events < durable {
			t.Fatalf("iteration %d: %d events survived, %d were synced", iter, rec.Events, durable)
		}
		var seq uint64
		err = c.Events(func(e Event) error {
			kind, op, data := crashEvent(seq)
			if e.Seq != seq || e.Kind != kind || e.Op != op || !bytes.Equal(e.Data, data) {
				return fmt.Errorf("event %d is not what was appended: %s %s %q", seq, e.Kind, e.Op, e.Data)
			}
			seq++
			return nil
		})
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		if seq != rec.Events {
			t.Fatalf("iteration %d: read %d events, recovery says %d", iter, seq, rec.Events)
		}
		// The parent extends the chain too, so every iteration also proves
		// that a recovered chain takes appends.
		for range 3 {
			if _, err := c.Append(crashEvent(seq)); err != nil {
				t.Fatal(err)
			}
			seq++
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		durable = seq
		rep, err := VerifyFile(path)
		if err != nil || !rep.OK() || rep.Events != seq {
			t.Fatalf("iteration %d: verify after extending: %+v %v", iter, rep, err)
		}
	}
	t.Logf("%d kills, %d left a torn tail that Open cut; %d events in the chain", total, torn, durable)
}
