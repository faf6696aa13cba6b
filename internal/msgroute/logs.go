package msgroute

import (
	"context"
	"errors"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// Logs opens the log stream of the Actor key on the host that runs it
// (msgwire.Client.Logs). A target that is moving, and a host that answers
// NotHere or cannot be reached, are waited for and tried again as
// Deliver does, until MovingWait; then the error wraps msgwire.ErrMoving.
// Opening a stream changes nothing, so any attempt may be repeated.
func (r *Router) Logs(ctx context.Context, key types.NamespacedName, q msgwire.LogQuery) (io.ReadCloser, error) {
	give := time.Now().Add(r.opts.MovingWait)
	target := key.Namespace + "/" + key.Name
	backoff := firstBackoff
	var last error
	for {
		ch := r.changes()
		rt, err := r.Route(ctx, actorhost.Sender{}, target)
		var mv *errMoving
		switch {
		case errors.As(err, &mv):
			last = err
		case err != nil:
			return nil, err
		default:
			body, err := r.opts.Client.Logs(ctx, rt.Endpoint, rt.Epoch, rt.Key.Namespace, rt.Key.Name, q)
			if err == nil || !(errors.Is(err, msgwire.ErrNotHere) || errors.Is(err, msgwire.ErrNotSent)) {
				return body, err
			}
			last = err
		}
		wait := time.Until(give)
		if wait <= 0 || ctx.Err() != nil {
			return nil, &movingError{target: target, wait: r.opts.MovingWait, last: last}
		}
		pause(ctx, ch, backoff, wait)
		backoff = min(2*backoff, maxBackoff)
	}
}
