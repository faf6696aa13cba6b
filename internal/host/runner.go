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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/kubeenv"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// maxMessage bounds what the host writes into a condition message and
// status.lastError (the CRD allows 4096 bytes for the latter).
const maxMessage = 4000

// maxEventNote is the most an Event's note may hold: the API server refuses
// an events.k8s.io Event with a longer one, and client-go's recorder does
// not cut it.
const maxEventNote = 1024

// componentRecheck is how often a run waiting for its component's
// ConfigMap fetches again even though its watch said nothing (a watch the
// host may not make, or one that fails).
const componentRecheck = 30 * time.Second

// runActor is the life of one run: fetch the component, resolve the env,
// compile, start (init), then wait until the actor ends or the run is
// stopped. It reports every transition into the Actor's status.
func (h *Host) runActor(r *run, a *v1alpha1.Actor) {
	defer close(r.done)
	ctx := r.ctx
	begin := time.Now()
	log := h.log.WithValues("actor", r.key, "epoch", r.epoch, "generation", r.generation)
	h.pub.begin(r.key, r.epoch, r.generation)
	if !h.cfg.serves(a.Namespace) {
		// Before anything reads the namespace: the host has no right there.
		h.refuseNamespace(r, a)
		return
	}
	h.report(r, false, func(v *view) {
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonStarting, message: "fetching the component"}
	})

	if r.recordErr != nil {
		h.failStart(r, a, nil, v1alpha1.ReasonHostError, r.recordErr.Error())
		return
	}
	cfg, err := actorConfig(a)
	if err != nil {
		h.failStart(r, a, nil, v1alpha1.ReasonInvalidSpec, err.Error())
		return
	}
	if !h.waitDisk(ctx, r, a) {
		return
	}
	mod := h.waitComponent(ctx, r, a)
	if mod == nil {
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
	r.mu.Lock()
	r.comp = comp
	r.mu.Unlock()
	// The host's budget has the last word on memory: a start that would
	// pass it waits (and the manager moves it where there is room).
	adm, waited, ok := h.admitMemory(ctx, r, a, comp)
	if !ok {
		return
	}
	defer adm.done()
	if waited {
		// Its code may have been released as idle while it waited.
		if comp, err = h.engine.Compile(ctx, mod.Bytes); err != nil {
			if ctx.Err() == nil {
				h.failStart(r, a, env, v1alpha1.ReasonComponentError, fmt.Sprintf("%s: %s", mod.Source, actorMessage(err)))
			}
			return
		}
		r.mu.Lock()
		r.comp = comp
		r.mu.Unlock()
	}
	link, moved, restored, ok := h.chainStart(ctx, r, a)
	if !ok {
		return
	}
	if moved != "" {
		msg := fmt.Sprintf("the chain on this node does not contain the head in status (%s); kept it as %s and started a new segment linked to that head",
			v1alpha1.ShortHead(a.Status.Chain.Head), moved)
		if link != nil && link.Restored != nil {
			msg = fmt.Sprintf("the chain on this node does not contain the head in status (%s); kept it as %s and started a new segment from the archive's head (%s)",
				v1alpha1.ShortHead(a.Status.Chain.Head), moved, link.Head.Short())
		}
		log.Info(msg)
		h.event(a, corev1.EventTypeNormal, v1alpha1.EventNewChainSegment, "Start", msg)
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
	cfg.Stats = h.msgMetrics.statsFor(r.key)
	cfg.Logger = logr.New(&redactingSink{LogSink: h.log.WithName("actor").GetSink(), env: env})

	log.V(1).Info("compiled; starting", "dir", r.dir, "newSegment", link != nil)
	// Again: fetching and compiling take time, and write to the disk too.
	if !h.waitDisk(ctx, r, a) {
		return
	}
	if !h.claimArchive(ctx, r, a) {
		return
	}
	if link, restored, ok = h.settleClaim(ctx, r, a, link, restored); !ok {
		return
	}
	cfg.Continue = link
	if link != nil {
		baseline, baselineKnown = link.Length, true
	}
	actor, err := h.engine.Start(ctx, cfg)
	// The engine holds the actor's memory now, or gave it back.
	adm.done()
	if actor == nil {
		if ctx.Err() == nil {
			h.failStart(r, a, env, v1alpha1.ReasonHostError, err.Error())
		}
		return
	}
	if link != nil {
		// The segment started: say what it started from.
		h.reportRestore(r, a, link, moved, restored)
	}
	r.mu.Lock()
	r.actor = actor
	if baselineKnown {
		r.lastLength = baseline
	} else {
		_, r.lastLength = actor.Head()
	}
	r.mu.Unlock()
	h.metrics.calls.WithLabelValues(callInit, resultOf(err)).Inc()
	if err != nil {
		if ctx.Err() != nil {
			h.stopActor(r, a, actor)
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
		// The failure it holds is over: the actor runs.
		v.clearLastError = true
	})
	h.event(a, corev1.EventTypeNormal, v1alpha1.EventStarted, "Start", fmt.Sprintf("%s; started in %s", msg, took.Round(time.Millisecond)))
	log.V(1).Info("actor running", "took", took, "module", mod.Digest, "resolved", mod.Resolved)
	// After Running is reported: finding the archive's tip in the chain
	// file reads it.
	h.shipArchive(r, a, actor)

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
				h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonEnvSourceMissing, "ResolveEnv", "the running actor reads unset variables: "+m)
			}
			missing = m
		case <-ctx.Done():
			h.stopActor(r, a, actor)
			return
		}
	}
}

// stateLost says, in a Warning Event and the StateLost condition, that the
// run started a new chain segment without the actor's state: init got
// spec.initialState. Without an archive, state stays on the node that
// saved it; with one, why says why the archive gave none
// (docs/install.md#what-is-kept-where).
func (h *Host) stateLost(r *run, a *v1alpha1.Actor, link *actorhost.ChainLink, moved, why string) {
	msg := fmt.Sprintf("the actor continues its chain on node %s from event %d without the state it had there: init got spec.initialState",
		h.cfg.NodeName, link.Length)
	if link.Node != "" && link.Node != h.cfg.NodeName {
		msg += fmt.Sprintf("; its earlier chain and saved state stay on node %s", link.Node)
	}
	if moved != "" {
		msg += fmt.Sprintf("; the chain and state this node held from an earlier run were moved aside (%s)", moved)
	}
	switch {
	case h.cfg.Archive == nil:
		msg += ". State does not follow an actor to another node without an archive (docs/archive.md)"
	case why != "":
		msg += "; " + why
	}
	h.log.Info("actor started without its state", "actor", r.key, "epoch", r.epoch, "previousNode", link.Node, "previousLength", link.Length)
	h.report(r, true, func(v *view) { v.stateLost = textutil.Truncate(msg, maxMessage) })
	h.event(a, corev1.EventTypeWarning, v1alpha1.EventStateLost, "Start", msg)
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
			h.event(a, corev1.EventTypeNormal, v1alpha1.EventResolved, "Fetch", fmt.Sprintf("image %s resolved to %s", a.Spec.Component.Image, mod.Resolved))
		}
	}
	return mod, nil
}

// waitComponent fetches the actor's module. While the ConfigMap that
// spec.component names, or its key, does not exist, it waits as waitEnv
// does for a missing env source: Ready=False reason ComponentSourceMissing,
// phase unchanged, and a new fetch as soon as the ConfigMap changes. (A
// failure instead would start again only after the manager's restart
// backoff, minutes once it has grown.) Any other fetch error fails the run.
// It returns nil when the run failed or was stopped.
func (h *Host) waitComponent(ctx context.Context, r *run, a *v1alpha1.Actor) *component.Module {
	var watch *kubeenv.Env
	defer func() {
		if watch != nil {
			watch.Close()
		}
	}()
	reported := ""
	for {
		mod, err := h.fetch(ctx, r.key, a)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			return mod
		case component.KindOf(err) != component.KindSourceMissing || a.Spec.Component.ConfigMap == nil:
			h.failStart(r, a, nil, v1alpha1.ReasonComponentError, err.Error())
			return nil
		case watch == nil:
			// Watched before fetching again: a ConfigMap created in
			// between is seen by the fetch or by the watch's first list.
			watch = h.envs.WatchObject(kubeenv.ObjectKey{Kind: kubeenv.ConfigMap, Namespace: a.Namespace, Name: a.Spec.Component.ConfigMap.Name})
			continue
		}
		if msg := "waiting for the actor's component: " + err.Error(); msg != reported {
			reported = msg
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonComponentSourceMissing, message: msg}
			})
			h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonComponentSourceMissing, "Fetch", msg)
		}
		select {
		case <-watch.Changes():
		case <-time.After(componentRecheck):
		case <-ctx.Done():
			return nil
		}
	}
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
		h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonEnvSourceMissing, "ResolveEnv", msg)
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

// maxListedNamespaces bounds how many served namespaces a refusal names.
const maxListedNamespaces = 5

// refuseNamespace reports an actor of a namespace this host does not serve
// (assigned by a manager that predates v1alpha1.NamespacesAnnotation, or by
// hand): Ready=False, reason NamespaceNotServed, and a Warning Event. The
// phase stays: like a missing env source it is no failure of the actor, so
// the manager neither restarts it nor counts it against its backoff. The
// run ends at once, having read nothing of the namespace and written
// nothing on the node.
func (h *Host) refuseNamespace(r *run, a *v1alpha1.Actor) {
	served := h.cfg.ActorNamespaces
	list := strings.Join(served[:min(len(served), maxListedNamespaces)], ", ")
	if more := len(served) - maxListedNamespaces; more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	msg := textutil.Truncate(fmt.Sprintf("host %s runs Actors of namespaces %s only (--actor-namespaces) and may not read ConfigMaps or Secrets in namespace %s: "+
		"add %s to the chart value host.actorNamespaces, or move the Actor to a served namespace", h.cfg.PodName, list, a.Namespace, a.Namespace), maxMessage)
	r.setState(stateEnded)
	h.metrics.starts.WithLabelValues(v1alpha1.ReasonNamespaceNotServed).Inc()
	h.report(r, true, func(v *view) {
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonNamespaceNotServed, message: msg}
	})
	h.event(a, corev1.EventTypeWarning, v1alpha1.ReasonNamespaceNotServed, "Start", msg)
	h.log.Info("refused an actor of a namespace this host does not serve", "actor", r.key, "epoch", r.epoch, "servedNamespaces", served)
}

// stopActor stops a run's actor because the host was told to: its call in
// progress gets StopGrace, its chain is flushed and closed, uploaded to the
// archive (if any), and the final head is reported (written if this host
// still owns the status, e.g. at shutdown).
func (h *Host) stopActor(r *run, a *v1alpha1.Actor, actor *actorhost.Actor) {
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
	h.flushArchive(r, a, actor)
	r.setState(stateEnded)
	head, length := actor.Head()
	h.countAppends(r, length)
	h.countTicks(r, actor)
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
	h.flushArchive(r, a, actor)
	r.mu.Lock()
	wasRunning := r.state == stateRunning
	r.mu.Unlock()
	r.setState(stateEnded)
	head, length := actor.Head()
	h.countAppends(r, length)
	h.countTicks(r, actor)
	phase, reason, msg := v1alpha1.PhaseSucceeded, v1alpha1.ReasonShutdown, "the actor called shutdown"
	if actor.Phase() != actorhost.PhaseSucceeded {
		phase, reason, msg = v1alpha1.PhaseFailed, readyReason(err), env.Redact(actorMessage(err))
		if wasRunning {
			// Once init returned, the engine calls nothing but tick: a
			// running actor fails in one (its ok ticks are counted above).
			h.metrics.calls.WithLabelValues(callTick, reason).Inc()
		}
	}
	msg = textutil.Truncate(msg, maxMessage)
	h.recordEnd(r, phase, reason)
	h.report(r, true, func(v *view) {
		v.phase = phase
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: reason, message: msg}
		v.hasChain, v.head, v.length = true, head.String(), length
		if phase == v1alpha1.PhaseFailed {
			v.lastError = msg
		}
	})
	if phase == v1alpha1.PhaseFailed {
		h.failedEvent(a, "Run", reason, msg)
	} else {
		h.event(a, corev1.EventTypeNormal, reason, "Run", msg)
	}
}

// recordEnd remembers in the actor's directory that this run ended, unless
// the record there could not be read: a file this host does not
// understand is left for the operator, never overwritten.
func (h *Host) recordEnd(r *run, phase v1alpha1.Phase, reason string) {
	if r.recordErr != nil {
		return
	}
	rec := actordir.RunRecord{Epoch: r.epoch, Generation: r.generation, Phase: string(phase), Reason: reason}
	if err := actordir.WriteRunRecord(r.dir, rec); err != nil {
		h.log.Error(err, "recording how the run ended", "actor", r.key)
	}
}

// failedEvent records the one Warning Event of a failure (the manager
// records none of its own): reason Failed, the Ready reason and message
// as the note.
func (h *Host) failedEvent(a *v1alpha1.Actor, action, reason, msg string) {
	h.event(a, corev1.EventTypeWarning, v1alpha1.EventFailed, action, reason+": "+msg)
}

// failStart reports a run that could not start: Failed with reason.
func (h *Host) failStart(r *run, a *v1alpha1.Actor, env *kubeenv.Env, reason, msg string) {
	if env != nil {
		msg = env.Redact(msg)
	}
	msg = textutil.Truncate(msg, maxMessage)
	h.metrics.starts.WithLabelValues(reason).Inc()
	r.setState(stateEnded)
	h.recordEnd(r, v1alpha1.PhaseFailed, reason)
	h.report(r, true, func(v *view) {
		v.phase = v1alpha1.PhaseFailed
		v.ready = &readyCond{status: metav1.ConditionFalse, reason: reason, message: msg}
		v.lastError = msg
	})
	h.failedEvent(a, "Start", reason, msg)
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

// Values of troupe_host_calls_total's export label: the calls into an
// actor's exports the host has the engine make.
const (
	callInit = "init"
	callTick = "tick"
)

// countTicks adds the actor's ok tick calls since the last look to the
// calls metric. The engine counts them; the host looks when it polls heads
// and when the run ends, so the metric is at most one poll late.
func (h *Host) countTicks(r *run, actor *actorhost.Actor) {
	n := actor.Ticks()
	r.mu.Lock()
	if n > r.lastTicks {
		h.metrics.calls.WithLabelValues(callTick, "ok").Add(float64(n - r.lastTicks))
		r.lastTicks = n
	}
	r.mu.Unlock()
}

// pollHeads publishes the chain heads of running actors, at most once per
// status interval each (the publisher coalesces), and counts appends and
// ticks.
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
			h.countTicks(r, actor)
			h.checkMailbox(ctx, r, actor, time.Now())
			head, length := actor.Head()
			if length == last {
				continue
			}
			h.countAppends(r, length)
			h.report(r, false, func(v *view) { v.hasChain, v.head, v.length = true, head.String(), length })
		}
	}
}

// readyReasons names each engine failure in the Ready condition.
var readyReasons = map[actorhost.Reason]string{
	actorhost.ReasonInvalidModule: v1alpha1.ReasonComponentError,
	actorhost.ReasonMissingExport: v1alpha1.ReasonComponentError,
	actorhost.ReasonMemoryLimit:   v1alpha1.ReasonMemoryLimit,
	actorhost.ReasonTimeout:       v1alpha1.ReasonCallTimeout,
	actorhost.ReasonTrap:          v1alpha1.ReasonTrapped,
	actorhost.ReasonExit:          v1alpha1.ReasonExited,
	actorhost.ReasonABI:           v1alpha1.ReasonABIViolation,
	actorhost.ReasonInitFailed:    v1alpha1.ReasonInitFailed,
	actorhost.ReasonTickFailed:    v1alpha1.ReasonTickFailed,
	actorhost.ReasonHandlerFailed: v1alpha1.ReasonHandlerFailed,
	actorhost.ReasonHostError:     v1alpha1.ReasonHostError,
	actorhost.ReasonCanceled:      v1alpha1.ReasonCanceled,

	actorhost.ReasonChainRateLimit: v1alpha1.ReasonChainRateLimit,
	actorhost.ReasonChainSizeLimit: v1alpha1.ReasonChainSizeLimit,
	actorhost.ReasonDiskPressure:   v1alpha1.ReasonDiskPressure,
}

// readyReason is the Ready condition's reason for an actor's failure; an
// error the engine did not classify is the host's, and a reason the engine
// gained since readyReasons was written goes by its own (CamelCase) name.
func readyReason(err error) string {
	r := actorhost.ReasonOf(err)
	if name, ok := readyReasons[r]; ok {
		return name
	}
	if r == "" {
		return v1alpha1.ReasonHostError
	}
	return string(r)
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

// event records a Kubernetes Event on the Actor, its note cut to what the
// API server accepts; notes are the host's own words and never hold a
// value read from a Secret.
func (h *Host) event(a *v1alpha1.Actor, eventType, reason, action, note string) {
	var related runtime.Object
	h.events.Eventf(a, related, eventType, reason, action, "%s", textutil.Truncate(note, maxEventNote))
}
