package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
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
		Args: cobra.ExactArgs(1),
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
	f.DurationVar(&o.tick, "tick", actorhost.DefaultTickInterval, "how often a ticking actor's tick is called (default: the YAML's tickInterval, or 1s); 0 never calls it")
	f.DurationVar(&o.timeout, "timeout", 0, "deadline of each call into the actor (default: the YAML's limits.callTimeout, or 5s)")
	f.StringVar(&o.logFormat, "log-format", "text", "format of the log lines on stderr: text or json")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "also show the actor's debug logs and the engine's lifecycle messages")
	o.stopGrace = 10 * time.Second
	return cmd
}

// usageError marks setup errors: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// runSpec is what `troupe run` resolved from ACTOR and the flags.
type runSpec struct {
	wasm         []byte
	name         string
	namespace    string
	env          runtimehandler.MapEnv
	handler      runtimehandler.Config
	memoryPages  uint32
	timeout      time.Duration
	tick         time.Duration // 0: the --tick flag's value
	initialState []byte
	warnings     []string
}

func runActor(ctx context.Context, o *runOptions, actorPath string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usageError("--log-format %q: want text or json", o.logFormat)
	}
	if o.tick < 0 {
		return usageError("--tick %s: want a positive duration, or 0 for no ticks", o.tick)
	}
	logger := logr.New(newTermSink(stderr, o.logFormat == "json", o.verbose))
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
		if dir, err = defaultChainDir(spec.name); err != nil {
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
		return &exitError{code: 1, err: fmt.Errorf("%s: %w", actorPath, err)}
	}

	// Signals stop the actor gracefully, also while init runs.
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	tick := tickInterval(o, spec)
	if component.Ticks() && tick > 0 {
		cliLog.V(1).Info("the actor exports tick", "every", tick.String())
	}
	a, err := engine.Start(sigCtx, actorhost.ActorConfig{
		Name: spec.name, Namespace: spec.namespace, Component: component, Dir: dir,
		Env: spec.env, Handler: spec.handler, MemoryPages: spec.memoryPages,
		CallTimeout: spec.timeout, InitialState: spec.initialState, TickInterval: tick,
	})
	if a == nil {
		return usageError("%v", err)
	}
	if err == nil && !o.once {
		select {
		case <-a.Done(): // the actor shut itself down
		case <-sigCtx.Done():
			cliLog.Info("stopping the actor", "signal", "received")
		}
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.stopGrace)
	defer cancel()
	reason := "troupe run exited"
	switch {
	case o.once:
		reason = "troupe run --once: init returned"
	case sigCtx.Err() != nil:
		reason = "troupe run got a signal"
	}
	stopErr := a.Stop(stopCtx, reason)
	if err == nil {
		err = a.Err()
	}
	printRunSummary(stdout, o.logFormat == "json", a, component.Ticks(), dir, err)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("actor %s failed: %w", spec.name, err)}
	}
	if stopErr != nil {
		return &exitError{code: 1, err: stopErr}
	}
	return nil
}

// tickInterval is the engine's TickInterval: an explicit --tick wins over
// the YAML's spec.tickInterval; --once and --tick 0 never tick.
func tickInterval(o *runOptions, spec *runSpec) time.Duration {
	if o.once {
		return -1
	}
	if !o.tickSet && spec.tick > 0 {
		return spec.tick
	}
	if o.tick <= 0 {
		return -1
	}
	return o.tick
}

// printRunSummary prints the chain's head and length (and the outcome);
// ticking says whether the actor exports tick.
func printRunSummary(w io.Writer, asJSON bool, a *actorhost.Actor, ticking bool, dir string, err error) {
	head, length := a.Head()
	if asJSON {
		out := map[string]any{"actorID": a.ID(), "name": a.Name(), "phase": string(a.Phase()),
			"chainDir": dir, "chainHead": head.String(), "chainLength": length}
		if ticking {
			out["ticks"] = a.Ticks()
		}
		if err != nil {
			out["error"] = err.Error()
			if r := actorhost.ReasonOf(err); r != "" {
				out["reason"] = string(r)
			}
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(w, "%s\n", b)
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

// wasmMagic starts every WebAssembly binary.
var wasmMagic = []byte("\x00asm")

// resolveRun reads ACTOR (a module or an Actor YAML) and merges the flags.
func resolveRun(o *runOptions, actorPath string) (*runSpec, error) {
	raw, err := os.ReadFile(actorPath)
	if err != nil {
		return nil, usageError("reading %s: %w", actorPath, err)
	}
	spec := &runSpec{handler: runtimehandler.DefaultConfig()}
	declared := map[string]runtimehandler.EnvValue{}
	// unresolved are variables declared from a ConfigMap or Secret key:
	// name -> (secret source, optional, description).
	type pending struct {
		secret, optional bool
		what, field      string
	}
	unresolved := map[string]pending{}
	var envFromErrs []string

	if bytes.HasPrefix(raw, wasmMagic) || strings.HasSuffix(actorPath, ".wasm") {
		spec.wasm = raw
		spec.name = strings.TrimSuffix(filepath.Base(actorPath), filepath.Ext(actorPath))
	} else {
		actor, err := v1alpha1.ParseActor(raw)
		if err != nil {
			return nil, usageError("%s: %w", actorPath, err)
		}
		if err := actor.Validate(v1alpha1.ValidationOptions{AllowPath: true}); err != nil {
			return nil, usageError("%s: %w", actorPath, err)
		}
		src := actor.Spec.Component
		if src.Kind() != v1alpha1.SourcePath {
			return nil, usageError("%s: spec.component.%s: troupe run reads only a local module (spec.component.path); download it and point path at it, or pass the .wasm file", actorPath, src.Kind())
		}
		path := src.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(actorPath), path)
		}
		if spec.wasm, err = os.ReadFile(path); err != nil {
			hint := ""
			if errors.Is(err, os.ErrNotExist) {
				hint = " (for the examples, run `make examples` first)"
			}
			return nil, usageError("%s: spec.component.path: %w%s", actorPath, err, hint)
		}
		if src.SHA256 != "" {
			sum := sha256.Sum256(spec.wasm)
			if got := hex.EncodeToString(sum[:]); got != src.SHA256 {
				return nil, usageError("%s: spec.component.sha256 pins %s, but %s has %s", actorPath, src.SHA256, path, got)
			}
		}
		spec.name = actor.ManifestName()
		spec.namespace = actor.Namespace
		if actor.Spec.InitialState != "" {
			spec.initialState = []byte(actor.Spec.InitialState)
		}
		if h, ok := actor.Spec.Handler(v1alpha1.HandlerRuntime); ok && h.Config != nil {
			if spec.handler, err = runtimehandler.ParseConfig(h.Config.Raw); err != nil {
				return nil, usageError("%s: spec.handlers[runtime].config: %w", actorPath, err)
			}
		}
		// limits and the handler's config both bound the same sizes: the
		// tighter one applies.
		l := actor.Spec.Limits
		spec.handler.MaxLogBytes = tighter(spec.handler.MaxLogBytes, int(l.MaxLogBytes))
		spec.handler.MaxEventBytes = tighter(spec.handler.MaxEventBytes, int(l.MaxEventBytes))
		spec.handler.MaxMetricNames = tighter(spec.handler.MaxMetricNames, int(l.MaxMetricNames))
		spec.memoryPages = uint32(l.MaxMemoryPages)
		spec.timeout = l.CallTimeoutDuration()
		spec.tick = actor.Spec.TickIntervalDuration()

		for i, ev := range actor.Spec.Env {
			field := fmt.Sprintf("spec.env[%d] (%s)", i, ev.Name)
			switch {
			case ev.Value != nil:
				declared[ev.Name] = runtimehandler.EnvValue{Value: *ev.Value}
			case ev.ValueFrom != nil && ev.ValueFrom.SecretKeyRef != nil:
				r := ev.ValueFrom.SecretKeyRef
				unresolved[ev.Name] = pending{secret: true, optional: r.Optional != nil && *r.Optional,
					what: fmt.Sprintf("key %s of Secret %s", r.Key, r.Name), field: field}
			case ev.ValueFrom != nil && ev.ValueFrom.ConfigMapKeyRef != nil:
				r := ev.ValueFrom.ConfigMapKeyRef
				unresolved[ev.Name] = pending{optional: r.Optional != nil && *r.Optional,
					what: fmt.Sprintf("key %s of ConfigMap %s", r.Key, r.Name), field: field}
			}
		}
		for i, ef := range actor.Spec.EnvFrom {
			var what string
			optional := false
			switch {
			case ef.ConfigMapRef != nil:
				what, optional = "ConfigMap "+ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
			case ef.SecretRef != nil:
				what, optional = "Secret "+ef.SecretRef.Name, ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
			}
			msg := fmt.Sprintf("spec.envFrom[%d]: troupe run cannot read %s without a cluster", i, what)
			if optional {
				spec.warnings = append(spec.warnings, msg+"; it is optional, so its variables are unset (give them with --env or --env-file)")
			} else {
				envFromErrs = append(envFromErrs, msg+"; mark it optional: true to run locally, and give the variables you need with --env or --env-file")
			}
		}
	}
	if o.name != "" {
		spec.name = o.name
	}
	if spec.name == "" {
		spec.name = "actor"
	}
	if o.timeout < 0 {
		return nil, usageError("--timeout %s: want a positive duration", o.timeout)
	}
	if o.timeout > 0 {
		spec.timeout = o.timeout
	}

	// Overrides: --env-file in order, then --env.
	overrides := runtimehandler.MapEnv{}
	for _, path := range o.envFiles {
		m, err := readEnvFile(path)
		if err != nil {
			return nil, usageError("--env-file: %w", err)
		}
		maps.Copy(overrides, m)
	}
	flags, err := parseEnvAssignments(o.env)
	if err != nil {
		return nil, usageError("--env: %w", err)
	}
	maps.Copy(overrides, flags)

	var errs []string
	for name, p := range unresolved {
		if v, ok := overrides[name]; ok {
			// The YAML says this value is a Secret: keep it out of the
			// chain even though it came from a flag.
			v.Secret = p.secret
			overrides[name] = v
			continue
		}
		msg := fmt.Sprintf("%s reads %s, which troupe run cannot read without a cluster", p.field, p.what)
		if p.optional {
			spec.warnings = append(spec.warnings, msg+"; it is optional, so it is unset (give it with --env or --env-file)")
		} else {
			errs = append(errs, msg+"; give it with --env "+name+"=VALUE or --env-file")
		}
	}
	errs = append(errs, envFromErrs...)
	if len(errs) > 0 {
		sortStrings(errs)
		return nil, usageError("%s: %s", actorPath, strings.Join(errs, "\n  "))
	}
	sortStrings(spec.warnings)
	maps.Copy(declared, overrides)
	spec.env = declared
	return spec, nil
}

func tighter(a, b int) int {
	if b > 0 && (a <= 0 || b < a) {
		return b
	}
	return a
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// termSink is a logr.LogSink that writes one line per record, readable
// (`12:00:01.123 INFO  hello: message key=value`) or as JSON. Guest text is
// escaped: a log message cannot start a new line or send a terminal
// control sequence.
type termSink struct {
	mu      *sync.Mutex
	w       io.Writer
	json    bool
	verbose bool
	name    string // the actor's name (from WithValues "name")
	values  []any
	now     func() time.Time
}

func newTermSink(w io.Writer, asJSON, verbose bool) *termSink {
	return &termSink{mu: &sync.Mutex{}, w: w, json: asJSON, verbose: verbose, now: time.Now}
}

func (s *termSink) Init(logr.RuntimeInfo) {}

func (s *termSink) Enabled(level int) bool { return level == 0 || s.verbose }

func (s *termSink) Info(level int, msg string, kv ...any) {
	lvl := "info"
	if level > 0 {
		lvl = "debug"
	}
	s.write(lvl, msg, nil, kv)
}

func (s *termSink) Error(err error, msg string, kv ...any) { s.write("error", msg, err, kv) }

func (s *termSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, _ := kv[i].(string); k == "name" {
			c.name = fmt.Sprint(kv[i+1])
		}
	}
	return &c
}

func (s *termSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name == "" {
		c.name = name
	} else {
		c.name += "/" + name
	}
	return &c
}

// hiddenKeys are context the text format leaves out: the name is the
// line's prefix, the rest is constant in local mode.
var hiddenKeys = map[string]bool{"name": true, "namespace": true, "actorID": true, "level": true}

func (s *termSink) write(lvl, msg string, err error, kv []any) {
	all := append(append([]any{}, s.values...), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		if k, _ := all[i].(string); k == "level" {
			if v, _ := all[i+1].(string); v != "" {
				lvl = v
			}
		}
	}
	var line []byte
	t := s.now()
	if s.json {
		rec := map[string]any{"time": t.Format(time.RFC3339Nano), "level": lvl, "msg": msg}
		if err != nil {
			rec["error"] = err.Error()
		}
		for i := 0; i+1 < len(all); i += 2 {
			k := fmt.Sprint(all[i])
			if k == "level" {
				continue
			}
			rec[k] = jsonValue(all[i+1])
		}
		line, _ = json.Marshal(rec)
	} else {
		var b strings.Builder
		b.WriteString(t.Format("15:04:05.000"))
		b.WriteByte(' ')
		fmt.Fprintf(&b, "%-5s ", strings.ToUpper(lvl))
		if s.name != "" {
			b.WriteString(escapeTerminal(s.name))
			b.WriteString(": ")
		}
		b.WriteString(escapeTerminal(msg))
		if err != nil {
			b.WriteString(": ")
			b.WriteString(escapeTerminal(err.Error()))
		}
		for i := 0; i+1 < len(all); i += 2 {
			k := fmt.Sprint(all[i])
			if hiddenKeys[k] {
				continue
			}
			v := fmt.Sprint(all[i+1])
			if strings.ContainsAny(v, " \"=") || v == "" {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(&b, " %s=%s", escapeTerminal(k), escapeTerminal(v))
		}
		line = []byte(b.String())
	}
	line = append(line, '\n')
	s.mu.Lock()
	_, _ = s.w.Write(line)
	s.mu.Unlock()
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	}
	return v
}

// escapeTerminal replaces control characters (newlines, escape sequences,
// C1 controls) and invalid UTF-8 with visible escapes.
func escapeTerminal(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// plural is "1 tick", "2 ticks".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}
