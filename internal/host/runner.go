package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/kubeenv"
)

// maxMessage bounds what the host writes into a condition message and
// status.lastError (the CRD allows 4096 bytes for the latter).
const maxMessage = 4000

// runActor is the life of one run: fetch the component, resolve the env,
// compile, start (init), then wait until the actor ends or the run is
// stopped. It reports every transition into the Actor's status.
func (h *Host) runActor(r *run, a *v1alpha1.Actor) {
	defer close(r.done)
	ctx := r.ctx
	begin := time.Now()
	log := h.log.WithValues("actor", r.key, "epoch", r.epoch, "generation", r.generation)
	h.pub.begin(r.key, r.epoch, r.generation)
	h.report(r, false, func(v *view) {
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonStarting, message: "fetching the component"}
	})

	cfg, err := actorConfig(a)
	if err != nil {
		h.failStart(r, a, nil, v1alpha1.ReasonInvalidSpec, err.Error())
		return
	}
	mod, err := h.fetch(ctx, r.key, a)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		h.failStart(r, a, nil, v1alpha1.ReasonComponentError, err.Error())
		return
	}
	log.V(1).Info("fetched the component", "module", mod.Digest, "source", mod.Source, "resolved", mod.Resolved, "cached", mod.Cached)
	env := h.envs.Env(a.Namespace, &a.Spec)
	defer env.Close()
	if !h.waitEnv(ctx, r, a, env) {
		return
	}
	log.V(1).Info("resolved the env")
	comp, err := h.engine.Compile(ctx, mod.Bytes)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		h.failStart(r, a, env, v1alpha1.ReasonComponentError, fmt.Sprintf("%s: %s", mod.Source, actorMessage(err)))
		return
	}
	link, moved, err := continuation(r.dir, a.Status.Chain, time.Now())
	if err != nil {
		h.failStart(r, a, env, string(actorhost.ReasonHostError), err.Error())
		return
	}
	if moved != "" {
		msg := fmt.Sprintf("the chain on this node does not contain the head in status (%s); kept it as %s and started a new segment linked to that head",
			v1alpha1.ShortHead(a.Status.Chain.Head), moved)
		log.Info(msg)
		h.event(a, "Normal", "NewChainSegment", "Start", msg)
	}
	// Where the chain stands before the start, when that is known without
	// reading it: the appends metric then counts the start's own events.
	baseline, baselineKnown := uint64(0), false
	if link != nil {
		baseline, baselineKnown = link.Length, true
	} else if _, err := os.Stat(filepath.Join(r.dir, chain.FileName)); errors.Is(err, fs.ErrNotExist) {
		baselineKnown = true
	}
	cfg.Component, cfg.Dir, cfg.Env, cfg.Continue = comp, r.dir, env, link
	cfg.Logger = logr.New(&redactingSink{LogSink: h.log.WithName("actor").GetSink(), env: env})

	log.V(1).Info("compiled; starting", "dir", r.dir, "newSegment", link != nil)
	actor, err := h.engine.Start(ctx, cfg)
	if actor == nil {
		if ctx.Err() == nil {
			h.failStart(r, a, env, string(actorhost.ReasonHostError), err.Error())
		}
		return
	}
	r.mu.Lock()
	r.actor = actor
	if baselineKnown {
		r.lastLength = baseline
	} else {
		_, r.lastLength = actor.Head()
	}
	r.mu.Unlock()
	h.metrics.calls.WithLabelValues("init", resultOf(err)).Inc()
	if err != nil {
		if ctx.Err() != nil {
			h.stopActor(r, actor)
			return
		}
		h.metrics.starts.WithLabelValues(readyReason(err)).Inc()
		h.ended(r, a, env, actor, err)
		return
	}
	took := time.Since(begin)
	h.metrics.starts.WithLabelValues("ok").Inc()
	h.metrics.startSeconds.Observe(took.Seconds())
	r.setState(stateRunning)
	head, length := actor.Head()
	h.countAppends(r, length)
	msg := fmt.Sprintf("running module %s from %s on node %s", mod.Digest, moduleOrigin(mod), h.cfg.NodeName)
	h.report(r, true, func(v *view) {
		v.phase = v1alpha1.PhaseRunning
		v.ready = &readyCond{status: metav1.ConditionTrue, reason: v1alpha1.ReasonRunning, message: msg}
		v.hasChain, v.head, v.length = true, head.String(), length
	})
	h.event(a, "Normal", "Started", "Start", fmt.Sprintf("%s; started in %s", msg, took.Round(time.Millisecond)))
	log.V(1).Info("actor running", "took", took, "module", mod.Digest, "resolved", mod.Resolved)

	missing := ""
	for {
		select {
		case <-actor.Done():
			h.ended(r, a, env, actor, actor.Err())
			return
		case <-env.Changes():
			// Values reach the actor by themselves; only a required source
			// going away deserves a word (a running actor keeps running, as
			// a Pod's container keeps the env it started with).
			m := strings.Join(env.Missing(), "; ")
			if m != "" && m != missing {
				h.event(a, "Warning", v1alpha1.ReasonEnvSourceMissing, "ResolveEnv", "the running actor reads unset variables: "+m)
			}
			missing = m
		case <-ctx.Done():
			h.stopActor(r, actor)
			return
		}
	}
}

// fetch gets the module; for an image, a later run of the same generation
// reuses what the tag resolved to the first time, so restarts run the same
// bits even when the tag moved.
func (h *Host) fetch(ctx context.Context, key types.NamespacedName, a *v1alpha1.Actor) (*component.Module, error) {
	src := a.Spec.Component.DeepCopy()
	h.mu.Lock()
	res, ok := h.resolved[key]
	h.mu.Unlock()
	pinned := ok && res.generation == a.Generation && res.image == src.Image && src.Image != ""
	if pinned {
		src.Image = res.resolved
	}
	mod, err := h.fetcher.Fetch(ctx, a.Namespace, src)
	if err != nil {
		return nil, err
	}
	if pinned {
		mod.Source = a.Spec.Component.Image
	} else if mod.Resolved != "" {
		h.mu.Lock()
		h.resolved[key] = resolution{generation: a.Generation, image: a.Spec.Component.Image, resolved: mod.Resolved}
		h.mu.Unlock()
		if !strings.Contains(a.Spec.Component.Image, "@") {
			h.event(a, "Normal", "Resolved", "Fetch", fmt.Sprintf("image %s resolved to %s", a.Spec.Component.Image, mod.Resolved))
		}
	}
	return mod, nil
}

func moduleOrigin(m *component.Module) string {
	if m.Resolved != "" {
		return m.Resolved
	}
	return m.Source
}

// waitEnv waits until the actor's env sources are read and every required
// one exists, reporting Ready=False reason EnvSourceMissing while it waits.
// It returns false when the run was stopped meanwhile.
func (h *Host) waitEnv(ctx context.Context, r *run, a *v1alpha1.Actor, env *kubeenv.Env) bool {
	reported := ""
	say := func(msg string) {
		if msg == reported {
			return
		}
		reported = msg
		h.report(r, true, func(v *view) {
			v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonEnvSourceMissing, message: msg}
		})
		h.event(a, "Warning", v1alpha1.ReasonEnvSourceMissing, "ResolveEnv", msg)
	}
	for {
		sctx, cancel := context.WithTimeout(ctx, h.cfg.EnvSyncTimeout)
		err := env.WaitSynced(sctx)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			say(err.Error())
			continue
		}
		missing := env.Missing()
		if len(missing) == 0 {
			return true
		}
		say("waiting for the actor's env sources: " + strings.Join(missing, "; "))
		select {
		case <-env.Changes():
		case <-ctx.Done():
			return false
		}
	}
}

// stopActor stops a run's actor because the host was told to: its call in
// progress gets StopGrace, its chain is flushed and closed, and the final
// head is reported (written if this host still owns the status, e.g. at
// shutdown).
func (h *Host) stopActor(r *run, actor *actorhost.Actor) {
	r.mu.Lock()
	reason := r.stopReason
	r.mu.Unlock()
	if reason == "" {
		reason = "stopped by the host"
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StopGrace)
	defer cancel()
	if err := actor.Stop(ctx, reason); err != nil {
		h.log.Error(err, "stopping an actor", "actor", r.key)
	}
	r.setState(stateEnded)
	head, length := actor.Head()
	h.countAppends(r, length)
	h.report(r, false, func(v *view) { v.hasChain, v.head, v.length = true, head.String(), length })
}

// ended reports an actor that stopped by itself: it called shutdown
// (Succeeded) or failed (Failed, with the reason).
func (h *Host) ended(r *run, a *v1alpha1.Actor, env *kubeenv.Env, actor *actorhost.Actor, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StopGrace)
	defer cancel()
	if serr := actor.Stop(ctx, "ended"); serr != nil {
		h.log.Error(serr, "releasing an actor", "actor", r.key)
	}
	r.setState(stateEnded)
	head, length := actor.Head()
	h.countAppends(r, length)
	phase, reason, msg := v1alpha1.PhaseSucceeded, v1alpha1.ReasonShutdown, "the actor called shutdown"
	if actor.Phase() != actorhost.PhaseSucceeded {
		phase, reason, msg = v1alpha1.PhaseFailed, readyReason(err), env.Redact(actorMessage(err))
	}
	msg = truncate(msg)
	if werr := writeRunRecord(r.dir, runRecord{Epoch: r.epoch, Generation: r.generation, Phase: string(phase), Reason: reason}); werr != nil {
		h.log.Error(werr, "recording how the run ended", "actor", r.key)
	}
	h.report(r, true, func(v *view) {
		v.phase = phase
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: reason, message: msg}
		v.hasChain, v.head, v.length = true, head.String(), length
		if phase == v1alpha1.PhaseFailed {
			v.lastError = msg
		}
	})
	if phase == v1alpha1.PhaseFailed {
		h.event(a, "Warning", v1alpha1.EventFailed, "Run", reason+": "+msg)
	} else {
		h.event(a, "Normal", reason, "Run", msg)
	}
}

// failStart reports a run that could not start: Failed with reason.
func (h *Host) failStart(r *run, a *v1alpha1.Actor, env *kubeenv.Env, reason, msg string) {
	if env != nil {
		msg = env.Redact(msg)
	}
	msg = truncate(msg)
	h.metrics.starts.WithLabelValues(reason).Inc()
	r.setState(stateEnded)
	if err := writeRunRecord(r.dir, runRecord{Epoch: r.epoch, Generation: r.generation, Phase: string(v1alpha1.PhaseFailed), Reason: reason}); err != nil {
		h.log.Error(err, "recording how the run ended", "actor", r.key)
	}
	h.report(r, true, func(v *view) {
		v.phase = v1alpha1.PhaseFailed
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: reason, message: msg}
		v.lastError = msg
	})
	h.event(a, "Warning", reason, "Start", msg)
	h.log.Info("actor failed to start", "actor", r.key, "epoch", r.epoch, "reason", reason, "message", msg)
}

func (h *Host) report(r *run, urgent bool, fn func(*view)) {
	h.pub.update(r.key, r.epoch, urgent, fn)
}

// countAppends adds the chain growth since the last look to the metric.
func (h *Host) countAppends(r *run, length uint64) {
	r.mu.Lock()
	if length > r.lastLength {
		h.metrics.appends.Add(float64(length - r.lastLength))
		r.lastLength = length
	}
	r.mu.Unlock()
}

// pollHeads publishes the chain heads of running actors, at most once per
// status interval each (the publisher coalesces), and counts appends.
func (h *Host) pollHeads(ctx context.Context) {
	t := time.NewTicker(max(h.cfg.StatusInterval/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		runs := make([]*run, 0, len(h.runs))
		for _, r := range h.runs {
			runs = append(runs, r)
		}
		h.mu.Unlock()
		for _, r := range runs {
			r.mu.Lock()
			actor, running, last := r.actor, r.state == stateRunning, r.lastLength
			r.mu.Unlock()
			if actor == nil || !running {
				continue
			}
			head, length := actor.Head()
			if length == last {
				continue
			}
			h.countAppends(r, length)
			h.report(r, false, func(v *view) { v.hasChain, v.head, v.length = true, head.String(), length })
		}
	}
}

// readyReason is the Ready condition's reason for an actor's failure.
func readyReason(err error) string {
	switch r := actorhost.ReasonOf(err); r {
	case actorhost.ReasonInvalidModule, actorhost.ReasonMissingExport:
		return v1alpha1.ReasonComponentError
	case actorhost.ReasonTrap:
		return v1alpha1.ReasonTrapped
	case actorhost.ReasonTimeout:
		return v1alpha1.ReasonCallTimeout
	case actorhost.ReasonInitFailed:
		return v1alpha1.ReasonInitFailed
	case actorhost.ReasonTickFailed:
		return string(actorhost.ReasonTickFailed)
	case "":
		return string(actorhost.ReasonHostError)
	default:
		return string(r)
	}
}

func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	return readyReason(err)
}

// actorMessage is an actor failure's one-line account.
func actorMessage(err error) string {
	if err == nil {
		return "the actor stopped"
	}
	var ae *actorhost.ActorError
	if errors.As(err, &ae) {
		if ae.Op == "" {
			return ae.Message
		}
		return ae.Op + ": " + ae.Message
	}
	return err.Error()
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// event records a Kubernetes Event on the Actor; notes are the host's own
// words and never hold a value read from a Secret.
func (h *Host) event(a *v1alpha1.Actor, eventType, reason, action, note string) {
	var related runtime.Object
	h.events.Eventf(a, related, eventType, reason, action, "%s", truncate(note))
}
