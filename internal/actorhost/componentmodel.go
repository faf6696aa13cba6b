package actorhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/runtimehandler"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// A WebAssembly component (what wit-component, cargo-component,
// componentize-js emit) is run as the main core module it reduces to
// (internal/wasmcomponent; docs/components.md says why): the engine
// compiles and instantiates that module as it does any actor's, the
// runtime handler and preview1 serve its imports unchanged, and the WASI
// 0.2 functions it imports directly are served by a host module
// (runtimehandler.InstantiateWASI) named after the set it imports.

// wasiHostPrefix starts the module name a reduced main module imports its
// WASI 0.2 functions from, each named "<interface>#<function>". The host
// module is shared by every component whose main module imports the same
// WASI 0.2 functions with the same types (every componentize-js actor of a
// version), so its name is that set's digest: the renamed module's bytes,
// and so the compilation cache, depend on the component only.
const wasiHostPrefix = "troupe:wasi@0.2/"

// reduction is what the engine runs of a component.
type reduction struct {
	// module is the main module, its WASI 0.2 imports renamed.
	module []byte
	// wasi are those imports, for the host module named wasiName.
	wasi     []runtimehandler.WASIImport
	wasiName string
}

// reduceComponent reduces a component to its main module, within the
// engine's bounds: the component's size is bounded as a module's is
// (Limits.ModuleBytes), its definitions and nesting by the reducer's
// defaults, and the main module goes through every bound of Check after.
func (e *Engine) reduceComponent(wasm []byte) (*reduction, error) {
	limits := wasmcomponent.DefaultLimits
	limits.MaxBytes = int(min(e.opts.Limits.ModuleBytes, math.MaxInt))
	if uint64(len(wasm)) > e.opts.Limits.ModuleBytes {
		return nil, newActorError(ReasonInvalidModule, "compile",
			"the component is %d bytes, more than the %d allowed", len(wasm), e.opts.Limits.ModuleBytes)
	}
	r, err := wasmcomponent.ReduceWithLimits(wasm, limits)
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, wasmcomponent.ErrUnsupported) {
			msg = "not a valid WebAssembly component: " + firstLine(msg)
		}
		return nil, &ActorError{Reason: ReasonInvalidModule, Op: "compile", Message: msg, Err: err}
	}
	red := &reduction{}
	// First the WASI 0.2 imports, whose set names their host module, then
	// the module renamed to import them from it.
	exportName := func(imp wasmcomponent.Import) (runtimehandler.WASIImport, bool) {
		if !runtimehandler.IsWASI02(imp.Interface) {
			return runtimehandler.WASIImport{}, false
		}
		fn := imp.Func
		if imp.Kind == wasmcomponent.ResourceDrop {
			fn = "[resource-drop]" + fn
		}
		return runtimehandler.WASIImport{Interface: imp.Interface, Func: fn, Signature: imp.Signature}, true
	}
	h := sha256.New()
	for _, imp := range r.Imports {
		if w, ok := exportName(imp); ok {
			red.wasi = append(red.wasi, w)
			fmt.Fprintf(h, "%s %s\n", w.ExportName(), w.Signature)
		}
	}
	if len(red.wasi) > 0 {
		red.wasiName = wasiHostPrefix + hex.EncodeToString(h.Sum(nil)[:12])
	}
	err = r.Rename(func(imp wasmcomponent.Import) (string, string) {
		if w, ok := exportName(imp); ok {
			return red.wasiName, w.ExportName()
		}
		return imp.HostModule, imp.HostName
	})
	if err != nil {
		return nil, &ActorError{Reason: ReasonInvalidModule, Op: "compile",
			Message: "not a valid WebAssembly component: " + firstLine(err.Error()), Err: err}
	}
	red.module = r.Module
	return red, nil
}

// wasiHost is a WASI 0.2 host module and how many compiled components
// use it (guarded by Engine.mu).
type wasiHost struct {
	mod  api.Module
	refs int
}

// acquireWASI returns the WASI 0.2 host module a component's main module
// imports, instantiating it for the first component that needs it; nil
// when it imports none. Each acquire is paired with a releaseWASI.
func (e *Engine) acquireWASI(ctx context.Context, red *reduction) (api.Module, error) {
	if red == nil || len(red.wasi) == 0 {
		return nil, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if h, ok := e.wasiHosts[red.wasiName]; ok {
		h.refs++
		return h.mod, nil
	}
	m, err := runtimehandler.InstantiateWASI(ctx, e.rt, red.wasiName, red.wasi)
	if err != nil {
		return nil, &ActorError{Reason: ReasonInvalidModule, Op: "compile", Message: firstLine(err.Error()), Err: err}
	}
	e.wasiHosts[red.wasiName] = &wasiHost{mod: m, refs: 1}
	return m, nil
}

// releaseWASI drops a component's use of its WASI 0.2 host module, closing
// it when no component uses it any more.
func (e *Engine) releaseWASI(ctx context.Context, m api.Module) {
	if m == nil {
		return
	}
	e.mu.Lock()
	h, ok := e.wasiHosts[m.Name()]
	if ok && h.mod == m {
		h.refs--
		if h.refs > 0 {
			e.mu.Unlock()
			return
		}
		delete(e.wasiHosts, m.Name())
	}
	e.mu.Unlock()
	_ = m.Close(ctx)
}

// componentInfo is what a Component remembers of the component it was
// reduced from.
type componentInfo struct {
	// mainDigest is the SHA-256 of the main module the engine runs.
	mainDigest [sha256.Size]byte
	// wasi is the component's WASI 0.2 host module, nil for none.
	wasi api.Module
}

// IsComponent reports whether the actor's bytes were a WebAssembly
// component, run as its main module.
func (c *Component) IsComponent() bool { return c.component != nil }

// MainModuleDigest is the digest ("sha256:<hex>") of the core module the
// engine runs: the component's main module, or the module itself.
func (c *Component) MainModuleDigest() string {
	if c.component == nil {
		return c.Digest()
	}
	return digestString(c.component.mainDigest)
}

// close releases the compiled code and the component's use of its host
// module.
func (c *Component) close(ctx context.Context, e *Engine) {
	_ = c.compiled.Close(ctx)
	c.image.close()
	if c.component != nil {
		e.releaseWASI(ctx, c.component.wasi)
	}
}
