package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/asyncwriter"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/version"
)

func init() { subcommands = append(subcommands, newRunCommand) }

// runOptions are the flags of `troupe run`.
type runOptions struct {
	env       []string
	envFiles  []string
	name      string
	chainDir  string
	once      bool
	tick      time.Duration
	tickSet   bool // --tick was given: it overrides spec.tickInterval
	timeout   time.Duration
	logFormat string
	verbose   bool
	// stop is how long a stop waits for the call in progress before it
	// cancels it.
	stopGrace time.Duration
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] ACTOR",
		Short: "Run an actor on this machine, without a cluster",
		Long: `Run one actor locally with the same engine and runtime handler as the
cluster's hosts.

ACTOR is a WebAssembly module (.wasm) or an Actor YAML (apiVersion
theater.troupe.dev/v1alpha1, kind Actor) whose spec.component.path names a
local module, relative to the YAML's directory. The YAML's literal env values
apply; values from ConfigMaps and Secrets cannot be read without a cluster:
optional ones are left unset with a warning, required ones are an error
unless --env or --env-file gives them. --env-file, then --env, override.

The actor's logs go to stderr. The chain and the saved state live in
--chain-dir (default ${XDG_STATE_HOME:-~/.local/state}/troupe/actors/NAME):
running again with the same directory resumes from the saved state, with the
same actor id. On exit the chain head and length are printed.

Without --once the actor runs until it calls shutdown or the process gets
SIGINT or SIGTERM, which stop it gracefully. An actor that exports the
optional tick (troupe:actor/ticker) is called every --tick interval
meanwhile; others just wait. Exit status: 0 when init returned ok (and the
actor stopped cleanly), 1 when the actor failed, 2 for a usage or setup
error.`,
		Example: `  troupe run --once examples/hello/actor.yaml
  troupe run --env GREETING=Hi --chain-dir /tmp/hello bin/examples/hello.wasm
  troupe run --tick 250ms --env FEATURE_NEW_UI=true examples/feature-flags/actor.yaml`,
		Args: exactlyOne("ACTOR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.tickSet = cmd.Flags().Changed("tick")
			return runActor(cmd.Context(), o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.env, "env", nil, "set a variable the actor can read, NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "read NAME=VALUE lines from FILE (repeatable)")
	f.StringVar(&o.name, "name", "", "the actor's name (default: the YAML's name, or the .wasm file's)")
	f.StringVar(&o.chainDir, "chain-dir", "", "directory of the actor's chain and saved state")
	f.BoolVar(&o.once, "once", false, "run init, then stop (no ticks)")
	f.DurationVar(&o.tick, "tick", v1alpha1.DefaultTickInterval, "how often a ticking actor's tick is called, at least "+v1alpha1.MinTickInterval.String()+" (default: the YAML's tickInterval, or 1s); 0 never calls it")
	f.DurationVar(&o.timeout, "timeout", 0, "deadline of each call into the actor (default: the YAML's limits.callTimeout, or 5s)")
	f.StringVar(&o.logFormat, "log-format", "text", "format of the log lines on stderr: text or json")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "also show the actor's debug logs and the engine's lifecycle messages")
	o.stopGrace = 10 * time.Second
	return cmd
}

func runActor(ctx context.Context, o *runOptions, actorPath string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usageError("--log-format %q: want text or json", o.logFormat)
	}
	if o.tickSet && o.tick != 0 && o.tick < v1alpha1.MinTickInterval {
		return usageError("--tick %s: want at least %s (the engine's minimum tick interval), or 0 for no ticks", o.tick, v1alpha1.MinTickInterval)
	}
	// The run ends gracefully when the log output is closed (the reader of
	// a pipe went away): stopRun's cause says so.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	// A write to a closed stdout or stderr then returns EPIPE instead of
	// killing the process with SIGPIPE before the chain is flushed.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	sink := newTermSink(nil, o.logFormat == "json", o.verbose)
	// The actor's log calls never wait for the terminal: the chain has
	// every line, stderr what it takes.
	logOut := asyncwriter.New(stderr, maxTerminalQueue, sink.droppedNotice, func(err error) {
		stopRun(fmt.Errorf("%w: %w", errOutputClosed, err))
	})
	// flushLogs gives stderr logFlushGrace to take what is queued, once:
	// its error says stderr is gone or blocked.
	flushLogs := sync.OnceValue(func() error {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logFlushGrace)
		defer cancel()
		return logOut.Close(fctx)
	})
	defer flushLogs() //nolint:errcheck // on the paths that return early
	sink.w = logOut
	logger := logr.New(sink)
	spec, err := resolveRun(o, actorPath)
	if err != nil {
		return err
	}
	cliLog := logger.WithValues("name", "troupe")
	for _, w := range spec.warnings {
		cliLog.Info(w, "level", "warn")
	}
	dir := o.chainDir
	if dir == "" {
		if dir, err = defaultChainDir(spec.cfg.Name); err != nil {
			return usageError("%v; pass --chain-dir", err)
		}
	}

	engine, err := actorhost.NewEngine(ctx, actorhost.EngineOptions{Logger: logger, Version: version.String()})
	if err != nil {
		return fmt.Errorf("starting the engine: %w", err)
	}
	defer engine.Close(context.WithoutCancel(ctx))
	component, err := engine.Compile(ctx, spec.wasm)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", actorPath, err)}
	}

	// Signals stop the actor gracefully, also while init runs.
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	tick := tickInterval(o, spec)
	if component.Ticks() && tick > 0 {
		cliLog.V(1).Info("the actor exports tick", "every", tick.String())
	}
	cfg := spec.cfg
	cfg.Component, cfg.Dir, cfg.Env, cfg.TickInterval = component, dir, spec.env, tick
	a, err := engine.Start(sigCtx, cfg)
	if a == nil {
		return usageError("%v", err)
	}
	if err == nil && !o.once {
		select {
		case <-a.Done(): // the actor shut itself down
		case <-sigCtx.Done():
			cliLog.Info("stopping the actor", "signal", "received")
		case <-runCtx.Done():
			// The output is gone: the call in progress (init) was let
			// finish; nothing more is called.
		}
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.stopGrace)
	defer cancel()
	reason := "troupe run exited"
	outputClosed := errors.Is(context.Cause(runCtx), errOutputClosed)
	switch {
	case o.once:
		reason = "troupe run --once: init returned"
	case outputClosed:
		reason = "troupe run: its log output was closed"
	case sigCtx.Err() != nil:
		reason = "troupe run got a signal"
	}
	stopErr := a.Stop(stopCtx, reason)
	if err == nil {
		err = a.Err()
	}
	// The chain is flushed and closed; the terminal gets what it takes
	// within logFlushGrace.
	outErr := flushLogs()
	printRunSummary(stdout, o.logFormat == "json", a, component.Ticks(), dir, logOut.Dropped(), err)
	silent := outErr != nil // stderr is gone or blocked: the summary has the error
	if err != nil {
		return &exitError{code: exitFailed, silent: silent, err: fmt.Errorf("actor %s failed: %w", spec.cfg.Name, err)}
	}
	if stopErr != nil {
		return &exitError{code: exitFailed, silent: silent, err: stopErr}
	}
	return nil
}

// maxTerminalQueue bounds the log lines waiting for stderr: a megabyte,
// a few thousand lines, is a terminal's scrollback, not a store.
const maxTerminalQueue = 1 << 20

// logFlushGrace is how long troupe run waits, once the actor stopped, for
// stderr to take the log lines still queued.
const logFlushGrace = 2 * time.Second

// errOutputClosed is why a run stops when its log output fails.
var errOutputClosed = errors.New("the log output was closed")

// tickInterval is the engine's TickInterval: an explicit --tick wins over
// the spec's tickInterval (its default for a bare module); --once and
// --tick 0 never tick.
func tickInterval(o *runOptions, spec *runSpec) time.Duration {
	switch {
	case o.once, o.tickSet && o.tick == 0:
		return -1
	case o.tickSet:
		return o.tick
	}
	return spec.cfg.TickInterval
}

// printRunSummary prints the chain's head and length (and the outcome);
// ticking says whether the actor exports tick.
func printRunSummary(w io.Writer, asJSON bool, a *actorhost.Actor, ticking bool, dir string, dropped uint64, err error) {
	head, length := a.Head()
	if asJSON {
		out := map[string]any{"actorID": a.ID(), "name": a.Name(), "phase": string(a.Phase()),
			"chainDir": dir, "chainHead": head.String(), "chainLength": length}
		if ticking {
			out["ticks"] = a.Ticks()
		}
		if dropped > 0 {
			out["logLinesDropped"] = dropped
		}
		if err != nil {
			out["error"] = err.Error()
			if r := actorhost.ReasonOf(err); r != "" {
				out["reason"] = string(r)
			}
		}
		fmt.Fprintf(w, "%s\n", terminalJSON(out))
		return
	}
	outcome := "init ok, stopped"
	if ticking {
		outcome = fmt.Sprintf("init ok, %s, stopped", plural(a.Ticks(), "tick"))
	}
	switch {
	case err != nil:
		outcome = "failed: " + err.Error()
	case a.Phase() == actorhost.PhaseSucceeded:
		outcome = "shut itself down"
	}
	fmt.Fprintf(w, "actor   %s %s\n", escapeTerminal(a.Name()), a.ID())
	fmt.Fprintf(w, "result  %s\n", escapeTerminal(outcome))
	fmt.Fprintf(w, "chain   %s\n", filepath.Join(dir, chain.FileName))
	fmt.Fprintf(w, "head    %s\n", head)
	fmt.Fprintf(w, "length  %d\n", length)
	if dropped > 0 {
		fmt.Fprintf(w, "logs    %s dropped: stderr did not take them (the chain has them all)\n", plural(dropped, "line"))
	}
}

// defaultChainDir is ${XDG_STATE_HOME:-~/.local/state}/troupe/actors/NAME.
func defaultChainDir(name string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no state directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "troupe", "actors", safePathName(name)), nil
}

// safePathName makes an actor name usable as one path element.
func safePathName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s == "." || s == ".." {
		s = "actor"
	}
	return s
}

// plural is "1 tick", "2 ticks".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}
