package actorhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/troupe-dev/troupe/internal/wasmcheck"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
	"github.com/troupe-dev/troupe/internal/wasmimage"
)

// DefaultCompileTimeout is the last line behind the structural bounds of
// wasmcheck: a componentize-js main module (12 MB) compiles in about 10 s
// on a quiet 2-core machine and took up to 60 s on a loaded one; three
// times that is still an answer within minutes for a module that passes
// every bound and would compile for longer.
const DefaultCompileTimeout = 3 * time.Minute

// compileWorkers is how many goroutines compile one module. wazero checks
// the context between functions only when it compiles with workers: with
// one, a compile cannot be canceled at all, neither by its deadline nor by
// the actor's deletion. Two also halve a large module's wall time on an
// idle node.
const compileWorkers = 2

// DefaultMaxConcurrentCompiles is one compile per two CPUs (each compile
// runs compileWorkers goroutines), at least one.
func DefaultMaxConcurrentCompiles() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// compileEntry is one module's compile, shared by every Compile of the same
// bytes while it runs; once it succeeded, the compiled Component.
type compileEntry struct {
	done chan struct{}
	c    *Component
	err  error
	// waiters counts the Compile calls waiting for it, guarded by
	// Engine.mu: when the last one gives up, the compile is canceled.
	waiters int
	cancel  context.CancelFunc
}

// Compile checks, validates and compiles wasm, or returns the component
// already compiled from the same bytes (by SHA-256), so a warm start neither
// re-reads nor re-validates. A failure is an *ActorError with reason
// InvalidModule (a bound of the engine's Limits, malformed bytes, a compile
// past CompileTimeout, bad imports or signatures) or MissingExport.
//
// The compile itself runs apart from the caller: when ctx ends Compile
// returns at once, and the compile is canceled only when no other caller
// waits for the same module. At most MaxConcurrentCompiles modules compile
// at once; a module compiled before never waits for them.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Component, error) {
	digest := sha256.Sum256(wasm)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("engine is closed")
	}
	ce, ok := e.components[digest]
	if ok && ce.c != nil && ce.c.users == 0 {
		// Compiled for a start: not idle any more
		// (ReleaseIdleComponents).
		ce.c.idleFrom = time.Now()
	}
	if !ok {
		cctx, cancel := context.WithCancel(context.Background())
		ce = &compileEntry{done: make(chan struct{}), cancel: cancel}
		e.components[digest] = ce
		e.compiles.Add(1)
		go e.runCompile(cctx, ce, wasm, digest)
	}
	ce.waiters++
	e.mu.Unlock()

	select {
	case <-ce.done:
	case <-ctx.Done():
		e.mu.Lock()
		ce.waiters--
		select {
		case <-ce.done:
		default:
			if ce.waiters == 0 {
				// Nobody waits for it: stop it, and let the next caller
				// start afresh rather than join a canceled compile.
				ce.cancel()
				if e.components[digest] == ce {
					delete(e.components, digest)
				}
			}
		}
		e.mu.Unlock()
		return nil, ctx.Err()
	}
	e.mu.Lock()
	ce.waiters--
	e.mu.Unlock()
	return ce.c, ce.err
}

// Compiling is how many modules are compiling now, each holding a compile
// slot (a module compiled before takes none).
func (e *Engine) Compiling() int { return len(e.compileSlots) }

// runCompile is the goroutine of one compileEntry.
func (e *Engine) runCompile(ctx context.Context, ce *compileEntry, wasm []byte, digest [sha256.Size]byte) {
	defer e.compiles.Done()
	defer ce.cancel()
	c, err := e.compile(ctx, wasm, digest)
	e.mu.Lock()
	ce.c, ce.err = c, err
	if err == nil {
		c.idleFrom = time.Now()
	}
	if err != nil && e.components != nil && e.components[digest] == ce {
		// Failures are not kept: the next attempt may have more time.
		delete(e.components, digest)
	}
	e.mu.Unlock()
	if err == nil {
		// The new code is the actors' memory too.
		e.refreshCode()
	}
	close(ce.done)
}

func (e *Engine) compile(ctx context.Context, wasm []byte, digest [sha256.Size]byte) (*Component, error) {
	begin := time.Now()
	// A WebAssembly component runs as its main module (componentmodel.go);
	// the reduction is a bounded pass over its bytes.
	module := wasm
	var red *reduction
	if wasmcomponent.IsComponentLayer(wasm) {
		var err error
		if red, err = e.reduceComponent(wasm); err != nil {
			return nil, err
		}
		module = red.module
	}
	// The structural bounds first: they cost a linear read and refuse what
	// would take minutes or gigabytes to compile, or crash the decoder.
	if _, err := wasmcheck.Check(module, *e.opts.Limits); err != nil {
		msg := checkMessage(err)
		if red != nil {
			msg = "the component's main module: " + msg
		}
		return nil, &ActorError{Reason: ReasonInvalidModule, Op: "compile", Message: msg, Err: err}
	}
	bounded := wasmcheck.BoundTables(module, e.opts.Limits.TableElements)
	// The data segments become an image of the initial memory, built once
	// here and laid under each instance's memory, rather than copied by
	// wazero into every instance (and kept by it per instance).
	var image []byte
	if !e.opts.keepDataSegments {
		if rewritten, img, ok := wasmimage.Split(bounded, maxImageBytes); ok && len(img.Bytes) >= minImageBytes {
			bounded, image = rewritten, img.Bytes
		}
	}

	if !e.compiled.has(digest) {
		select {
		case e.compileSlots <- struct{}{}:
			defer func() { <-e.compileSlots }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	waited := time.Since(begin)
	cctx, cancel := context.WithTimeout(experimental.WithCompilationWorkers(ctx, compileWorkers), e.opts.CompileTimeout)
	defer cancel()
	start := time.Now()
	compiled, err := e.rt.CompileModule(cctx, bounded)
	took := time.Since(start)
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return nil, &ActorError{Reason: ReasonInvalidModule, Op: "compile", Err: err,
				Message: fmt.Sprintf("compiling the %d-byte module took longer than the %s allowed", len(wasm), e.opts.CompileTimeout)}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ActorError{Reason: ReasonInvalidModule, Op: "compile",
			Message: "not a valid WebAssembly module: " + firstLine(err.Error()), Err: err}
	}
	wasi, err := e.acquireWASI(ctx, red)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	c, err := e.validate(compiled, wasi)
	if err != nil {
		_ = compiled.Close(ctx)
		e.releaseWASI(ctx, wasi)
		return nil, err
	}
	if red != nil {
		c.component = &componentInfo{mainDigest: sha256.Sum256(module), wasi: wasi}
	}
	c.digest, c.size = digest, len(wasm)
	if image != nil {
		c.image = newMemImage(image, hex.EncodeToString(digest[:6]))
	}
	c.shape, c.importedFuncs = readShape(bounded), len(compiled.ImportedFunctions())
	e.compiled.add(digest)
	e.log.V(1).Info("compiled a module", "module", c.Digest(), "bytes", len(wasm), "component", red != nil, "waited", waited, "took", took)
	return c, nil
}

// maxImageBytes bounds a module's initial memory image: a module whose data
// lies further into its memory keeps its segments (wazero applies them).
// Go modules' images are under 2 MiB.
const maxImageBytes = 64 << 20

// minImageBytes is the smallest image worth it. A small module's segments
// cost its instances little, and a mapped image costs RSS beyond its use:
// the kernel maps a read fault's neighbouring pages of a file (fault-around,
// 64 KiB), so each instance would show an image page's 16 OS pages in its
// RSS (shared, not in its PSS); copied by wazero, only the pages written
// count.
const minImageBytes = 4 * wasmimage.PageBytes

// checkMessage is a wasmcheck refusal for a status condition.
func checkMessage(err error) string {
	if wasmcheck.IsLimit(err) {
		return err.Error()
	}
	return "not a valid WebAssembly module: " + firstLine(err.Error())
}

// compiledSet remembers the digests of the modules this engine compiled,
// in memory and, with an on-disk compilation cache, as empty files beside
// it: a module wazero finds in its cache is loaded in a fraction of a
// compile, and needs no compile slot. (When the cache lost it meanwhile,
// the module is compiled without waiting for a slot: it passed every
// bound before.)
type compiledSet struct {
	dir string // "" without an on-disk cache
	mu  sync.Mutex
	mem map[[sha256.Size]byte]bool
}

func (s *compiledSet) has(d [sha256.Size]byte) bool {
	s.mu.Lock()
	ok := s.mem[d]
	s.mu.Unlock()
	if ok || s.dir == "" {
		return ok
	}
	_, err := os.Stat(filepath.Join(s.dir, hex.EncodeToString(d[:])))
	return err == nil
}

func (s *compiledSet) add(d [sha256.Size]byte) {
	s.mu.Lock()
	s.mem[d] = true
	s.mu.Unlock()
	if s.dir == "" {
		return
	}
	// Best effort: without the marker the next start after a restart
	// waits for a slot, nothing worse.
	if err := os.MkdirAll(s.dir, 0o750); err == nil {
		_ = os.WriteFile(filepath.Join(s.dir, hex.EncodeToString(d[:])), nil, 0o640)
	}
}

// compiledMarkersDir names the markers' directory after the wazero that
// compiled: another version keeps its cache elsewhere and must compile
// anew.
func compiledMarkersDir() string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				v = d.Version
				if d.Replace != nil {
					v = d.Replace.Version
				}
			}
		}
	}
	return "troupe-compiled-" + strings.NewReplacer("/", "_", " ", "_").Replace(v)
}
