// Command diskfloods reproduces the disk floods of issue 10 with a real
// `troupe run` binary and reports what each wrote: an actor logging
// 16 KiB lines, one recording 1 MiB events and one rewriting a 16 MiB
// state, each ticking at the shortest interval `troupe run` allows, for
// the durations. docs/performance.md#the-disk-budget holds its figures.
//
//	go run ./hack/diskfloods --troupe bin/troupe
//
// It runs from the repository's root (it reads the flood actor,
// internal/actorhost/testdata/flood.wasm) and writes under $TMPDIR, which
// before the disk budget means gigabytes.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// flood is one of the floods: flood.wat's state (its mode, then a
// u32 count) as an Actor YAML string, and how long it runs.
type flood struct {
	name, state string
	seconds     int
}

// The floods ran at --tick 1ms, which `troupe run` now refuses
// (100ms is the least): each tick does 100 times the per-tick work,
// the same offered rate. The counts are little-endian u32s whose bytes are
// all ASCII, so that the YAML string holds them byte for byte.
var floods = []flood{
	// 127 (0x7F) log calls of 16 KiB a tick, about the 200 a tick:
	// 20 MiB/s, which the budget throttles without failing the actor (a
	// tick's 2 MiB take 2 s of its 5 s deadline).
	{"log 16 KiB x 127 a tick", `L\0\0\0\x7f\0\0\0` + zeros(8), 15},
	// 20,000 (0x4E20) log calls of 16 KiB a tick: 200 a millisecond, the
	// issue's offered rate, which no deadline can serve.
	{"log 16 KiB x 20000 a tick", `L\0\0\0 N\0\0` + zeros(8), 15},
	// 100 (0x64) record-event calls of 1 MiB a tick.
	{"record-event 1 MiB x 100 a tick", `E\0\0\0d\0\0\0` + zeros(8), 10},
	// init grows the state to 16 MiB (0x01000000), every tick changes it.
	{"16 MiB state changed every tick", `G\0\0\0\0\0\0\x01` + zeros(8), 10},
}

func zeros(n int) string { return strings.Repeat(`\0`, n) }

func main() {
	bin := flag.String("troupe", "bin/troupe", "the troupe binary to measure")
	scale := flag.Float64("scale", 1, "multiply each flood's duration (the issue's: 15 s, 10 s, 10 s)")
	only := flag.String("only", "", "run only the floods whose name contains this")
	flag.Parse()
	if err := run(*bin, *scale, *only); err != nil {
		fmt.Fprintln(os.Stderr, "diskfloods:", err)
		os.Exit(1)
	}
}

func run(bin string, scale float64, only string) error {
	wasm, err := os.ReadFile(filepath.Join("internal", "actorhost", "testdata", "flood.wasm"))
	if err != nil {
		return fmt.Errorf("reading the flood actor (run from the repository's root): %w", err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "flood\tran\tchain\tstate written\ttotal\trate\tended")
	for _, f := range floods {
		if !strings.Contains(f.name, only) {
			continue
		}
		r, err := runFlood(bin, wasm, f, time.Duration(float64(f.seconds)*scale*float64(time.Second)))
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		total := r.chain + r.state
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.1f MiB/s\t%s\n", f.name, r.ran.Round(100*time.Millisecond),
			mib(r.chain), mib(r.state), mib(total), float64(total)/(1<<20)/r.ran.Seconds(), r.result)
		_ = w.Flush()
	}
	return w.Flush()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

type result struct {
	ran          time.Duration
	chain, state int64
	result       string
}

// runFlood runs f for d (or until it ends), stops it with SIGINT as a user
// would, and measures what it wrote: the chain file, and the saved states
// its InitResult and ActorTick events record.
func runFlood(bin string, wasm []byte, f flood, d time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "diskflood-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "flood.wasm"), wasm, 0o644); err != nil {
		return result{}, err
	}
	yaml := "apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: flood}\nspec:\n" +
		"  component: {path: flood.wasm}\n  initialState: \"" + f.state + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "actor.yaml"), []byte(yaml), 0o644); err != nil {
		return result{}, err
	}
	chainDir := filepath.Join(dir, "chain")
	var stdout bytes.Buffer
	cmd := exec.Command(bin, "run", "--tick", "100ms", "--chain-dir", chainDir, filepath.Join(dir, "actor.yaml"))
	cmd.Stdout = &stdout // the actor's logs (stderr) go nowhere: a terminal would slow it down
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-time.After(d):
		_ = cmd.Process.Signal(syscall.SIGINT)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		select {
		case waitErr = <-exited:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return result{}, errors.New("did not stop within a minute of SIGINT")
		}
	}
	r := result{ran: time.Since(begin), result: "exit 0"}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		r.result = fmt.Sprintf("exit %d", ee.ExitCode())
	} else if waitErr != nil {
		return result{}, waitErr
	}
	for _, l := range strings.Split(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "result"); ok {
			r.result += ": " + strings.TrimSpace(rest)
		}
	}
	st, err := os.Stat(actordir.ChainPath(chainDir))
	if err != nil {
		return result{}, err
	}
	r.chain = st.Size()
	err = chain.ReadFile(actordir.ChainPath(chainDir), func(ev chain.Event) error {
		var s struct {
			Changed *bool  `json:"stateChanged"`
			Bytes   *int64 `json:"stateBytes"`
		}
		if ev.Kind != chain.KindInitResult && ev.Kind != chain.KindTick {
			return nil
		}
		if json.Unmarshal(ev.Data, &s) == nil && s.Bytes != nil && (ev.Kind == chain.KindInitResult || s.Changed != nil && *s.Changed) {
			r.state += *s.Bytes
		}
		return nil
	})
	return r, err
}
