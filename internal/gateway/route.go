package gateway

import (
	"context"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/msgroute"
)

// Routed delivers through a msgroute.Router: to the host that runs the
// target, over the peer transport, waiting (bounded) for a moving one.
type Routed struct{ Router *msgroute.Router }

// Deliver implements Deliverer; d.Target is already ns/name.
func (x Routed) Deliver(ctx context.Context, _, _, op string, d actorhost.Delivery) ([]byte, error) {
	kind := actorhost.KindSend
	if op == "request" {
		kind = actorhost.KindRequest
	}
	resp, _, err := x.Router.Deliver(ctx, kind, d)
	return resp, err
}
