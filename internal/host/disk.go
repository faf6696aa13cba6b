package host

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// watchDisk reads the free space of the data directory every
// DiskPollInterval until ctx ends.
func (h *Host) watchDisk(ctx context.Context) {
	h.disk.Watch(ctx, h.cfg.DiskPollInterval, func(err error) {
		h.log.WithName("disk").Error(err, "reading the data directory's free space")
	})
}

// logDisk logs when the disk pressure begins and ends, until ctx ends.
func (h *Host) logDisk(ctx context.Context) {
	log := h.log.WithName("disk")
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.disk.Changed():
		}
		if err := h.disk.Pressure(); err != nil {
			log.Info("disk pressure: no actor starts and no append is admitted until space returns", "message", err.Error())
		} else {
			log.Info("disk pressure is over")
		}
	}
}

// waitDisk holds a run back while the data directory is short of free
// space: Ready=False reason DiskPressure, phase unchanged, one Event per
// wait; it returns true once space returns, false when the run was stopped
// meanwhile. An actor that starts would write its chain at once, so none
// starts under pressure, as the component cache and the compiled code are
// written there too.
func (h *Host) waitDisk(ctx context.Context, r *run, a *v1alpha1.Actor) bool {
	reported := false
	for {
		changed := h.disk.Changed()
		err := h.disk.Pressure()
		if err == nil {
			return true
		}
		if !reported {
			reported = true
			msg := "waiting for free space to start: " + err.Error()
			h.report(r, true, func(v *view) {
				v.ready = &readyCond{status: metav1.ConditionFalse, reason: v1alpha1.ReasonDiskPressure, message: msg}
			})
			h.event(a, corev1.EventTypeWarning, v1alpha1.EventDiskPressure, "Start", msg)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}
