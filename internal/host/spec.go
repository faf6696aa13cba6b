package host

import (
	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/actorspec"
)

// actorConfig turns an Actor's spec into the engine's settings, all but
// the component, the directory and the env: actorspec's, as `troupe run`
// does, plus the id the Actor's status holds.
func actorConfig(a *v1alpha1.Actor) (actorhost.ActorConfig, error) {
	cfg, err := actorspec.EngineConfig(a)
	cfg.ID = a.Status.ActorID
	return cfg, err
}
