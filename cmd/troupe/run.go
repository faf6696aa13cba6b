package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	// socket is --socket: where the run serves messages.
	socket string
	// stop is how long a stop waits for the call in progress before it
	// cancels it.
	stopGrace time.Duration
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] ACTOR...",
		Short: "Run actors on this machine, without a cluster",
		Long: `Run actors locally with the same engine and runtime handler as the
cluster's hosts. Several ACTORs run in one process and reach one another by
name (send, request); each has its own chain directory.

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
error.

Unless --once is given, the run serves its actors' messages on a unix socket
(--socket, default ${XDG_STATE_HOME:-~/.local/state}/troupe/run.sock):
` + "`troupe request NAME DATA`" + ` and ` + "`troupe send NAME DATA`" + ` reach them. A
second troupe run on a socket in use exits 2 naming the first one's pid.
With several ACTORs, --name and --chain-dir are usage errors; --once runs
every init in the order given, then stops them all.`,
		Example: `  troupe run --once examples/hello/actor.yaml
  troupe run --env GREETING=Hi --chain-dir /tmp/hello bin/examples/hello.wasm
  troupe run --tick 250ms --env FEATURE_NEW_UI=true examples/feature-flags/actor.yaml
  troupe run counter.wasm client.wasm    # then: troupe request client hello`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("missing ACTOR (usage: %s)", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.tickSet = cmd.Flags().Changed("tick")
			return runActors(cmd.Context(), o, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
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
	f.StringVar(&o.socket, "socket", "", "unix socket that serves the actors' messages (default ${XDG_STATE_HOME:-~/.local/state}/troupe/run.sock)")
	o.stopGrace = 10 * time.Second
	return cmd
}

// actorRun is one actor of a run.
type actorRun struct {
	path string
	spec *runSpec
	dir  string
	a    *actorhost.Actor
	// ticks: the actor exports tick.
	ticks bool
	// err is why it failed (init, a tick, a handler), stopErr what its
	// stop said.
	err, stopErr error
}

func runActors(ctx context.Context, o *runOptions, actorPaths []string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usageError("--log-format %q: want text or json", o.logFormat)
	}
	if o.tickSet && o.tick != 0 && o.tick < v1alpha1.MinTickInterval {
		return usageError("--tick %s: want at least %s (the engine's minimum tick interval), or 0 for no ticks", o.tick, v1alpha1.MinTickInterval)
	}
	if len(actorPaths) > 1 && (o.name != "" || o.chainDir != "") {
		return usageError("--name and --chain-dir name one actor, and %d are given: each takes its name from its YAML or file name, and its chain directory from its name", len(actorPaths))
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
	cliLog := logger.WithValues("name", "troupe")
	runs, err := resolveRuns(o, actorPaths)
	if err != nil {
		return err
	}
	for _, r := range runs {
		for _, w := range r.spec.warnings {
			cliLog.Info(w, "level", "warn")
		}
	}

	// The socket is taken before anything starts, so that a second run on
	// it changes nothing. --once serves none: nothing could be sent to an
	// actor that stops as soon as its init returned.
	var ln *socketListener
	if !o.once {
		path, err := socketPath(o.socket)
		if err != nil {
			return err
		}
		if ln, err = listenSocket(path); err != nil {
			return usageError("%v", err)
		}
		defer ln.Close()
	}

	engine, err := actorhost.NewEngine(ctx, actorhost.EngineOptions{Logger: logger, Version: version.String()})
	if err != nil {
		return fmt.Errorf("starting the engine: %w", err)
	}
	defer engine.Close(context.WithoutCancel(ctx))
	components := make([]*actorhost.Component, len(runs))
	for i, r := range runs {
		if components[i], err = engine.Compile(ctx, r.spec.wasm); err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", r.path, err)}
		}
	}

	// Signals stop the actors gracefully, also while an init runs.
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	// Every init runs, in the order given, whatever an earlier one did.
	started := 0
	for i, r := range runs {
		tick := tickInterval(o, r.spec)
		r.ticks = components[i].Ticks()
		if r.ticks && tick > 0 {
			cliLog.V(1).Info("the actor exports tick", "actor", r.spec.cfg.Name, "every", tick.String())
		}
		cfg := r.spec.cfg
		cfg.Component, cfg.Dir, cfg.Env, cfg.TickInterval = components[i], r.dir, r.spec.env, tick
		if r.a, r.err = engine.Start(sigCtx, cfg); r.a == nil {
			// Nothing was recorded: a setup error. Those started stop.
			stopRuns(ctx, o, runs[:started], "troupe run: another actor could not start")
			return usageError("%v", r.err)
		}
		started++
		if sigCtx.Err() != nil || runCtx.Err() != nil {
			break
		}
	}
	runs = runs[:started]
	// Served once every init returned: the actors reach one another
	// through the engine meanwhile, a caller outside waits for them all.
	var srv *http.Server
	if ln != nil {
		ms := &messageServer{engine: engine, actors: func() []actorInfo { return describeRuns(runs) }, names: map[string]string{}}
		for _, r := range runs {
			if c := r.spec.cfg; c.Namespace != "" {
				ms.names[c.Name] = c.Namespace + "/" + c.Name
			}
		}
		srv = ms.newHTTPServer()
		go srv.Serve(ln) //nolint:errcheck // ErrServerClosed once the run ends
		cliLog.V(1).Info("listening for messages", "socket", ln.path)
	}
	if !o.once && sigCtx.Err() == nil {
		select {
		case <-allDone(runs): // every actor shut itself down or failed
		case <-sigCtx.Done():
			cliLog.Info("stopping the actors", "signal", "received")
		case <-runCtx.Done():
			// The output is gone: the calls in progress were let finish;
			// nothing more is called.
		}
	}
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
	// The actors stop first: a request still waiting is answered (not
	// running), then the server has nothing left to wait for.
	stopRuns(ctx, o, runs, reason)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	// The chains are flushed and closed; the terminal gets what it takes
	// within logFlushGrace.
	outErr := flushLogs()
	for i, r := range runs {
		if i > 0 && o.logFormat != "json" {
			fmt.Fprintln(stdout)
		}
		// stderr is shared: its dropped lines are counted once, last.
		var dropped uint64
		if i == len(runs)-1 {
			dropped = logOut.Dropped()
		}
		printRunSummary(stdout, o.logFormat == "json", r.a, r.ticks, r.dir, dropped, r.err)
	}
	silent := outErr != nil // stderr is gone or blocked: the summary has the error
	var failed, stopFailed []error
	for _, r := range runs {
		if r.err != nil {
			failed = append(failed, fmt.Errorf("actor %s failed: %w", r.spec.cfg.Name, r.err))
		}
		if r.stopErr != nil {
			stopFailed = append(stopFailed, r.stopErr)
		}
	}
	if len(failed) > 0 {
		return &exitError{code: exitFailed, silent: silent, err: errors.Join(failed...)}
	}
	if len(stopFailed) > 0 {
		return &exitError{code: exitFailed, silent: silent, err: errors.Join(stopFailed...)}
	}
	return nil
}

// resolveRuns reads every ACTOR and picks its chain directory; two actors
// of one run cannot share a name, which is how they reach one another.
func resolveRuns(o *runOptions, actorPaths []string) ([]*actorRun, error) {
	runs := make([]*actorRun, len(actorPaths))
	byName := map[string]string{}
	for i, p := range actorPaths {
		spec, err := resolveRun(o, p)
		if err != nil {
			return nil, err
		}
		name := spec.cfg.Name
		if other, dup := byName[name]; dup {
			return nil, usageError("%s and %s are both named %q: actors of one run reach one another by name (rename one: metadata.name, or the file)", other, p, name)
		}
		byName[name] = p
		dir := o.chainDir
		if dir == "" {
			if dir, err = defaultChainDir(name); err != nil {
				return nil, usageError("%v; pass --chain-dir", err)
			}
		}
		runs[i] = &actorRun{path: p, spec: spec, dir: dir}
	}
	return runs, nil
}

// stopRuns stops the actors in the order given; each gets o.stopGrace for
// its call in progress.
func stopRuns(ctx context.Context, o *runOptions, runs []*actorRun, reason string) {
	for _, r := range runs {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.stopGrace)
		r.stopErr = r.a.Stop(stopCtx, reason)
		cancel()
		if r.err == nil {
			r.err = r.a.Err()
		}
	}
}

// allDone is closed once every actor's run has ended. Its goroutine ends
// with them: stopRuns ends every run.
func allDone(runs []*actorRun) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for _, r := range runs {
			<-r.a.Done()
		}
		close(done)
	}()
	return done
}

// describeRuns lists the run's actors for /v1/info.
func describeRuns(runs []*actorRun) []actorInfo {
	out := make([]actorInfo, 0, len(runs))
	for _, r := range runs {
		if a := r.a; a != nil {
			out = append(out, actorInfo{Name: a.Name(), ID: a.ID(), Phase: string(a.Phase())})
		}
	}
	return out
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
	root, err := stateRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "actors", safePathName(name)), nil
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
