package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/testutil"
)

var (
	troupeOnce sync.Once
	troupeBin  string
	troupeErr  error
)

// troupeBinary builds the troupe binary once per test run.
func troupeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the troupe binary")
	}
	troupeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "troupe-bin-")
		if err != nil {
			troupeErr = err
			return
		}
		troupeBin = filepath.Join(dir, "troupe")
		if out, err := exec.Command("go", "build", "-o", troupeBin, ".").CombinedOutput(); err != nil {
			troupeErr = fmt.Errorf("building troupe: %w\n%s", err, out)
		}
	})
	if troupeErr != nil {
		t.Fatal(troupeErr)
	}
	return troupeBin
}

// TestMain removes the binary troupeBinary built. It also gives the tests their own state root, so that no run of theirs
// (in process or a binary they start) takes the user's default socket or
// meets another test binary's.
func TestMain(m *testing.M) {
	state, err := os.MkdirTemp("", "troupe-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	_ = os.RemoveAll(state)
	if troupeBin != "" {
		_ = os.RemoveAll(filepath.Dir(troupeBin))
	}
	os.Exit(code)
}

// logflood writes the test actor that logs more than a pipe holds
// (testdata/logflood) into a new directory and returns its path.
func logflood(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "logflood.wasm")
	mustWrite(t, p, testutil.BuildActor(t, filepath.Join("cmd", "troupe", "testdata", "logflood")))
	return p
}

// checkFloodChain: the chain ends with ActorStop, init returned, and its
// log lines are all there: numbered from 0 without a gap.
func checkFloodChain(t *testing.T, dir string) {
	t.Helper()
	evs := chainEvents(t, dir)
	if last := evs[len(evs)-1]; last.Kind != chain.KindActorStop {
		t.Errorf("the chain ends with %s, want ActorStop", last.Kind)
	}
	if countKind(evs, chain.KindInitResult) != 1 {
		t.Errorf("no InitResult in the chain")
	}
	next := 0
	for _, ev := range evs {
		if ev.Kind != chain.KindLog {
			continue
		}
		var d struct{ Message string }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(d.Message); len(f) < 2 || f[1] != strconv.Itoa(next) {
			t.Fatalf("log line %q where line %d was due", d.Message[:min(20, len(d.Message))], next)
		}
		next++
	}
	if next < 200 {
		t.Errorf("the chain has %d of init's 200 log lines", next)
	}
}

// TestRunWithStderrNeverRead runs the real binary with stderr piped into a
// reader that never reads. Before, a log call blocked on the full pipe
// past the call's 2 s deadline and SIGTERM did not stop the run (it hung
// until the reader went away, 25 to 40 s, then died of SIGPIPE without an
// ActorStop). Now the actor's logs never wait for stderr: the run ends by
// itself (--once) or on SIGTERM, exit 0, with its whole chain, and the
// summary counts the lines stderr did not take.
func TestRunWithStderrNeverRead(t *testing.T) {
	bin, wasm := troupeBinary(t), logflood(t)
	tests := map[string]struct {
		args    []string
		sigterm bool
	}{
		"--once":  {args: []string{"--once"}},
		"SIGTERM": {args: []string{"--tick", "100ms"}, sigterm: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close() // never read
			cmd := exec.Command(bin, append(append([]string{"run", "--timeout", "2s", "--chain-dir", dir}, tc.args...), wasm)...)
			var stdout bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, w
			exited := start(t, cmd)
			_ = w.Close()
			if tc.sigterm {
				waitForChain(t, dir, "a tick", func(evs []chain.Event) bool { return countKind(evs, "ActorTick") > 0 })
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			// Before the fix the run never ended while r stayed open.
			exited.wait(t, "troupe run did not end while its stderr was not read", &stdout)
			checkFloodChain(t, dir)
			if !strings.Contains(stdout.String(), "lines dropped: stderr did not take them") {
				t.Errorf("the summary does not count the dropped lines:\n%s", stdout.String())
			}
		})
	}
}

// TestRunStopsWhenStderrCloses is `troupe run ... 2>&1 | head -2`: the
// reader takes two lines and goes away. Before, the next write killed the
// process with SIGPIPE and the chain kept only ActorStart and InitCall.
// Now the write fails with EPIPE, the call in progress finishes, and the
// actor stops gracefully: exit 0, every log line and the ActorStop in the
// chain.
func TestRunStopsWhenStderrCloses(t *testing.T) {
	bin, wasm := troupeBinary(t), logflood(t)
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--tick", "100ms", "--chain-dir", dir, wasm)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, w
	exited := start(t, cmd)
	_ = w.Close()
	br := bufio.NewReader(r)
	for range 2 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	_ = r.Close()
	exited.wait(t, "troupe run went on after its stderr was closed", &stdout)
	checkFloodChain(t, dir)
	if evs := chainEvents(t, dir); !strings.Contains(string(evs[len(evs)-1].Data), "log output was closed") {
		t.Errorf("ActorStop %s does not say why", evs[len(evs)-1].Data)
	}
}

// process is a started troupe binary; its exit is read once, by wait or
// by the test's cleanup, which kills it if it still runs.
type process chan error

func start(t *testing.T, cmd *exec.Cmd) process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := make(process, 1)
	go func() { p <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p
	})
	return p
}

// wait fails the test unless the process exits 0 within a deadline that
// only keeps a regression from hanging the suite.
func (p process) wait(t *testing.T, what string, stdout *bytes.Buffer) {
	t.Helper()
	select {
	case err := <-p:
		p <- err // for the cleanup
		if err != nil {
			t.Fatalf("troupe run: %v\nstdout: %s", err, stdout.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatal(what)
	}
}
