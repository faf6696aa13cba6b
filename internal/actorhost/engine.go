package actorhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"go.opentelemetry.io/otel/trace"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/diskbudget"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/version"
	"github.com/troupe-dev/troupe/internal/wasmcheck"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// CacheDir holds wazero's on-disk compilation cache; "" uses
	// os.UserCacheDir()/troupe/wazero, and when that is unavailable the
	// cache is kept in memory only.
	CacheDir string
	// NoDiskCache keeps compiled code in memory only (tests).
	NoDiskCache bool
	// Logger receives the engine's own messages and, through the runtime
	// handler, every actor's log lines.
	Logger logr.Logger
	// Metrics exports the actors' record-metric values; nil exports none.
	Metrics *runtimehandler.MetricsRegistry
	// MessageTimings, when set, receives the delivery and handling time
	// of every message an actor handles; nil measures nothing (and reads
	// no clock for it).
	MessageTimings MessageTimings
	// SystemInfo serves get-system-info; nil reads this machine.
	SystemInfo runtimehandler.SystemInfoSource
	// Version is what get-theater-version returns; "" is the build's.
	Version string
	// Now is the clock of the runtime handler and the chains; nil is time.Now.
	Now func() time.Time
	// MemoryBudget is the memory the actors may take together (linear
	// memory, their instances, their buffers and the compiled code); nil
	// is unlimited, each actor bounded by its own limit only.
	MemoryBudget *MemoryBudget
	// DiskBudget is the node-wide budget every actor's writes also take
	// from, and its free-space watermark; nil: none (`troupe run`).
	DiskBudget *diskbudget.Node

	// Limits bound a module's structure before it is compiled; nil is
	// wasmcheck.Default.
	Limits *wasmcheck.Limits
	// CompileTimeout bounds one compile (waiting for a compile slot not
	// included); 0 is DefaultCompileTimeout.
	CompileTimeout time.Duration
	// Remote delivers an actor's message to a target that does not run
	// in this engine (another host's); nil: such a target is
	// ErrNoSuchActor.
	Remote Remote

	// MaxConcurrentCompiles is how many modules the engine compiles at
	// once; 0 is DefaultMaxConcurrentCompiles. A module compiled before
	// (in memory or in the on-disk cache) does not wait for a slot.
	MaxConcurrentCompiles int
	// NamespaceLabels returns a namespace's labels (ok false when it is
	// not known), for AcceptPolicy.MatchLabels; a host answers it from a
	// namespace informer, without an API request. It is called on the
	// sender's path, for a cross-namespace message the target does not
	// accept by name: it must be quick and safe for concurrent use. nil:
	// no namespace matches a selector.
	NamespaceLabels func(namespace string) (labels map[string]string, ok bool)
	// Tracer, when set, makes a span of every delivery (the sender's
	// side) and every handler call, joined by the messages'
	// traceparent (package tracing); nil makes none and costs nothing.
	Tracer trace.Tracer

	// keepDataSegments leaves modules' data segments to wazero (no
	// initial memory image): the baseline of the memory measurements.
	keepDataSegments bool
}

// Engine runs actors: one wazero runtime for the process (the compiler
// engine, with an on-disk compilation cache), the runtime handler and WASI
// instantiated once in it, and one module instance per actor. It is safe for
// concurrent use; actors are independent of each other.
type Engine struct {
	opts  EngineOptions
	log   logr.Logger
	rt    wazero.Runtime
	cache wazero.CompilationCache
	// hostFuncs are the functions a component may import, by module and name.
	hostFuncs map[string]map[string]api.FunctionDefinition

	// budget is opts.MemoryBudget; codeHeld what the compiled code holds
	// in it.
	budget   *MemoryBudget
	codeHeld atomic.Uint64
	// compileSlots holds a token per compile in progress.
	compileSlots chan struct{}
	// compiled remembers the modules compiled before.
	compiled *compiledSet
	// compiles counts the compile goroutines, which Close waits for.
	compiles sync.WaitGroup

	mu         sync.Mutex
	components map[[sha256.Size]byte]*compileEntry
	actors     map[*Actor]struct{}
	// wasiHosts are the WASI 0.2 host modules of the compiled components,
	// by name (componentmodel.go).
	wasiHosts map[string]*wasiHost
	closed    bool

	// The router: running actors by id and by "namespace/name".
	routeMu sync.RWMutex
	byID    map[string]*Actor
	byName  map[string]*Actor
	// waitMu guards every Actor's waitingFor: the wait-for graph of
	// requests in flight, checked for cycles before a request waits.
	waitMu sync.Mutex
	// drains runs the actors' mailbox drains.
	drains *drainPool
}

// NewEngine creates the process's engine. Close it to release the runtime.
func NewEngine(ctx context.Context, opts EngineOptions) (*Engine, error) {
	if opts.Version == "" {
		opts.Version = version.String()
	}
	if opts.SystemInfo == nil {
		opts.SystemInfo = runtimehandler.NewNodeSystemInfo("", 2*time.Second)
	}
	if opts.Limits == nil {
		opts.Limits = &wasmcheck.Default
	}
	if opts.CompileTimeout == 0 {
		opts.CompileTimeout = DefaultCompileTimeout
	}
	if opts.MaxConcurrentCompiles == 0 {
		opts.MaxConcurrentCompiles = DefaultMaxConcurrentCompiles()
	}
	if opts.MaxConcurrentCompiles < 0 || opts.CompileTimeout < 0 {
		return nil, fmt.Errorf("compile concurrency %d and timeout %s must be positive", opts.MaxConcurrentCompiles, opts.CompileTimeout)
	}
	e := &Engine{
		opts:         opts,
		log:          opts.Logger,
		components:   map[[sha256.Size]byte]*compileEntry{},
		actors:       map[*Actor]struct{}{},
		wasiHosts:    map[string]*wasiHost{},
		compileSlots: make(chan struct{}, opts.MaxConcurrentCompiles),
		compiled:     &compiledSet{mem: map[[sha256.Size]byte]bool{}},
		budget:       opts.MemoryBudget,
		byID:         map[string]*Actor{},
		byName:       map[string]*Actor{},
		drains:       newDrainPool(),
	}
	// WithCloseOnContextDone: without it a looping guest ignores its
	// deadline and holds its goroutine (and the host) forever.
	cfg := wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true)
	if !opts.NoDiskCache {
		dir := opts.CacheDir
		if dir == "" {
			if base, err := os.UserCacheDir(); err == nil {
				dir = filepath.Join(base, "troupe", "wazero")
			}
		}
		if dir != "" {
			cache, err := wazero.NewCompilationCacheWithDir(dir)
			if err != nil {
				return nil, fmt.Errorf("opening the compilation cache in %s: %w", dir, err)
			}
			e.cache = cache
			cfg = cfg.WithCompilationCache(cache)
			e.compiled.dir = filepath.Join(dir, compiledMarkersDir())
		}
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		e.closeRuntime(ctx)
		return nil, fmt.Errorf("instantiating WASI preview 1: %w", err)
	}
	if _, err := runtimehandler.Instantiate(ctx, e.rt); err != nil {
		e.closeRuntime(ctx)
		return nil, fmt.Errorf("instantiating the runtime handler: %w", err)
	}
	e.hostFuncs = map[string]map[string]api.FunctionDefinition{}
	for _, name := range append([]string{wasi_snapshot_preview1.ModuleName}, abi.ImportModules()...) {
		mod := e.rt.Module(name)
		if mod == nil {
			e.closeRuntime(ctx)
			return nil, fmt.Errorf("host module %s is not instantiated", name)
		}
		e.hostFuncs[name] = mod.ExportedFunctionDefinitions()
	}
	return e, nil
}

func (e *Engine) closeRuntime(ctx context.Context) {
	_ = e.rt.Close(ctx)
	if e.cache != nil {
		_ = e.cache.Close(ctx)
	}
}

// Close stops every running actor (waiting for each's current call until
// ctx ends, then canceling it), then releases the runtime and the cache.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	actors := make([]*Actor, 0, len(e.actors))
	for a := range e.actors {
		actors = append(actors, a)
	}
	e.mu.Unlock()
	var errs []error
	for _, a := range actors {
		if err := a.Stop(ctx, "engine closed"); err != nil {
			errs = append(errs, err)
		}
	}
	// Compiles in progress are canceled and waited for: wazero must not
	// finish one into a closed runtime. The wait is one function's compile
	// at most (wasmcheck bounds it).
	e.mu.Lock()
	for _, ce := range e.components {
		ce.cancel()
	}
	e.mu.Unlock()
	compiles := make(chan struct{})
	go func() { e.compiles.Wait(); close(compiles) }()
	select {
	case <-compiles:
	case <-ctx.Done():
		return errors.Join(append(errs, fmt.Errorf("a compile did not stop in time; the runtime is left open: %w", ctx.Err()))...)
	}
	e.mu.Lock()
	var closing []*Component
	for _, ce := range e.components {
		if ce.c != nil {
			closing = append(closing, ce.c)
		}
	}
	e.components = nil
	e.mu.Unlock()
	for _, c := range closing {
		c.close(ctx, e)
	}
	e.drains.close()
	e.closeRuntime(context.WithoutCancel(ctx))
	return errors.Join(errs...)
}

// Component is a compiled, validated actor module, shared by every actor
// that runs it.
type Component struct {
	digest   [sha256.Size]byte
	size     int
	compiled wazero.CompiledModule
	// memMin is the minimum memory the module declares, in pages.
	memMin uint32
	// exports holds the names of the contract's exports (abi.Exports) the
	// module has, each with the table's signature.
	exports map[string]bool
	// shape and importedFuncs size an instance's heap (instanceBytes).
	shape         moduleShape
	importedFuncs int
	// component describes the WebAssembly component the module was
	// reduced from; nil for a core module.
	component *componentInfo
	// image is the module's initial memory, built from its data segments
	// (which the compiled module no longer has); nil when the module keeps
	// them (internal/wasmimage says which modules qualify).
	image *memImage
	// peak is the most memory one of its actors held, as observed: what
	// the next start of it is expected to take.
	peak atomic.Uint64

	// Guarded by Engine.mu: the actors running it, since when none does,
	// and whether it was released (ReleaseIdleComponents).
	users    int
	idleFrom time.Time
	released bool
}

// Digest returns the component's content digest, "sha256:<hex>".
// For a WebAssembly component it is the component's digest, not its main
// module's (MainModuleDigest).
func (c *Component) Digest() string { return digestString(c.digest) }

func digestString(d [sha256.Size]byte) string { return "sha256:" + hex.EncodeToString(d[:]) }

// Size is the length of the module in bytes.
func (c *Component) Size() int { return c.size }

// HandlesMessages reports which message handlers the module exports
// (theater:simple/message-server-client).
func (c *Component) HandlesMessages() (send, request bool) {
	return c.exports[abi.HandleSend.Name], c.exports[abi.HandleRequest.Name]
}

// Ticks reports whether the module exports the optional periodic entry
// point troupe:actor/ticker#tick, which the engine calls every tick
// interval once init has returned.
func (c *Component) Ticks() bool { return c.exports[abi.Tick.Name] }

// validate checks what instantiation would otherwise find late or not at
// all: every import is a host function with the right signature, the
// exports the canonical ABI needs exist with the right signatures.
//
// wasi is a component's WASI 0.2 host module, which the module imports as
// its name; nil for none.
func (e *Engine) validate(m wazero.CompiledModule, wasi api.Module) (*Component, error) {
	for _, imp := range m.ImportedFunctions() {
		mod, name, _ := imp.Import()
		funcs, ok := e.hostFuncs[mod]
		if wasi != nil && mod == wasi.Name() {
			funcs, ok = wasi.ExportedFunctionDefinitions(), true
		}
		if !ok {
			return nil, newActorError(ReasonInvalidModule, "compile",
				"imports function %s.%s from unknown module %q (actors may import %s and %s)",
				mod, name, mod, strings.Join(abi.ImportModules(), ", "), wasi_snapshot_preview1.ModuleName)
		}
		def, ok := funcs[name]
		if !ok {
			return nil, newActorError(ReasonInvalidModule, "compile", "imports unknown function %s.%s", mod, name)
		}
		if want := abi.SignatureOf(def); !want.Matches(imp) {
			return nil, newActorError(ReasonInvalidModule, "compile",
				"imports %s.%s with signature %s, the host's is %s", mod, name, abi.SignatureOf(imp), want)
		}
	}
	if mems := m.ImportedMemories(); len(mems) > 0 {
		mod, name, _ := mems[0].Import()
		return nil, newActorError(ReasonInvalidModule, "compile", "imports memory %s.%s: an actor must define its own memory", mod, name)
	}
	c := &Component{compiled: m, exports: map[string]bool{}}
	exports := m.ExportedFunctions()
	for _, x := range abi.Exports {
		def, ok := exports[x.Name]
		switch {
		case !ok && x.Required:
			return nil, newActorError(ReasonMissingExport, "compile", "module does not export %q", x.Name)
		case !ok:
			continue
		case !x.Matches(def):
			return nil, newActorError(ReasonInvalidModule, "compile", "export %q has signature %s, want %s%s",
				x.Name, abi.SignatureOf(def), x.Signature, x.Hint())
		}
		c.exports[x.Name] = true
	}
	mem, ok := m.ExportedMemories()[abi.Memory]
	if !ok {
		return nil, newActorError(ReasonMissingExport, "compile", "module does not export its linear memory as %q", abi.Memory)
	}
	c.memMin = mem.Min()
	return c, nil
}
