package host

import (
	"fmt"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/runtimehandler"
)

// actorConfig turns an Actor's spec into the engine's settings, all but
// the component, the directory and the env.
func actorConfig(a *v1alpha1.Actor) (actorhost.ActorConfig, error) {
	spec := a.Spec.DeepCopy()
	spec.Default()
	handler := runtimehandler.DefaultConfig()
	if h, ok := spec.Handler(v1alpha1.HandlerRuntime); ok && h.Config != nil {
		var err error
		if handler, err = runtimehandler.ParseConfig(h.Config.Raw); err != nil {
			return actorhost.ActorConfig{}, fmt.Errorf("spec.handlers[runtime].config: %w", err)
		}
	}
	for _, h := range spec.Handlers {
		if h.Type != v1alpha1.HandlerRuntime {
			return actorhost.ActorConfig{}, fmt.Errorf("spec.handlers: unknown handler type %q (known: runtime)", h.Type)
		}
	}
	// limits and the handler's config bound the same sizes: the tighter
	// one applies.
	l := spec.Limits
	handler.MaxLogBytes = tighter(handler.MaxLogBytes, int(l.MaxLogBytes))
	handler.MaxEventBytes = tighter(handler.MaxEventBytes, int(l.MaxEventBytes))
	handler.MaxMetricNames = tighter(handler.MaxMetricNames, int(l.MaxMetricNames))
	if err := handler.Validate(); err != nil {
		return actorhost.ActorConfig{}, fmt.Errorf("spec.limits: %w", err)
	}
	cfg := actorhost.ActorConfig{
		ID:          a.Status.ActorID,
		Name:        a.ManifestName(),
		Namespace:   a.Namespace,
		Handler:     handler,
		MemoryPages: uint32(l.MaxMemoryPages),
		CallTimeout: l.CallTimeoutDuration(),
		// Only actors that export tick are ticked, whatever this says.
		TickInterval: spec.TickIntervalDuration(),
	}
	if spec.InitialState != "" {
		cfg.InitialState = []byte(spec.InitialState)
	}
	return cfg, nil
}

func tighter(a, b int) int {
	if b > 0 && b < a {
		return b
	}
	return a
}
