package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/troupe-dev/troupe/internal/gateway"
	"github.com/troupe-dev/troupe/internal/kubescheme"
	"github.com/troupe-dev/troupe/internal/msgroute"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// peerFlags say how the gateway reaches the hosts: its peer identity (the
// manager's <release>-gateway-peer-tls Secret, CN troupe-gateway, the one
// identity a host lets deliver for an external caller) and where to look
// for Actors and the hosts' Leases.
type peerFlags struct {
	tlsDir          string
	hostNamespace   string
	actorNamespaces string
	movingWait      time.Duration
}

func (p *peerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.tlsDir, "peer-tls-dir", "/etc/troupe/peer", "directory of the gateway's peer identity (ca.crt, tls.crt, tls.key: the manager's Secret <release>-gateway-peer-tls), reloaded when it changes")
	fs.StringVar(&p.hostNamespace, "host-namespace", "", "namespace of the hosts' Leases (default: $POD_NAMESPACE)")
	fs.StringVar(&p.actorNamespaces, "actor-namespaces", "", "comma-separated namespaces whose Actors the hosts run (empty: all)")
	fs.DurationVar(&p.movingWait, "moving-wait", 0, "how long a message waits for a target moving between hosts before it fails, retriably (0: 5s; the request's own deadline caps it)")
}

// newDeliverer starts the routing cache (Actors and host Leases, from
// informers: no API request per message) and returns the router as a
// gateway.Deliverer, and a readiness check that passes once the cache has
// synced.
func newDeliverer(ctx context.Context, cfg *rest.Config, o *options, getenv func(string) string, log logr.Logger) (gateway.Deliverer, func() error, error) {
	p := o.peer
	if p.hostNamespace == "" {
		p.hostNamespace = getenv("POD_NAMESPACE")
	}
	if p.hostNamespace == "" {
		return nil, nil, errors.New("no --host-namespace and no POD_NAMESPACE: the hosts' Leases cannot be found")
	}
	var namespaces []string
	for ns := range strings.SplitSeq(p.actorNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces = append(namespaces, ns)
		}
	}
	files, err := msgwire.LoadCertFiles(p.tlsDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--peer-tls-dir: %w", err)
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, nil, err
	}
	c, err := msgroute.NewCache(cfg, scheme, namespaces, p.hostNamespace)
	if err != nil {
		return nil, nil, err
	}
	client := msgwire.NewClient(files.ClientTLSConfig(msgwire.HostCN), msgwire.ClientOptions{})
	r, err := msgroute.New(ctx, c, msgroute.Options{Client: client, LeaseNamespace: p.hostNamespace, MovingWait: p.movingWait, Log: log})
	if err != nil {
		return nil, nil, err
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			log.Error(err, "the routing cache stopped")
		}
	}()
	synced := make(chan struct{})
	go func() {
		if c.WaitForCacheSync(ctx) {
			close(synced)
			log.Info("routing cache synced", "hostNamespace", p.hostNamespace, "actorNamespaces", namespaces)
		}
	}()
	ready := func() error {
		select {
		case <-synced:
			return nil
		default:
			return errors.New("the routing cache (Actors, host Leases) has not synced yet")
		}
	}
	return gateway.Routed{Router: r}, ready, nil
}
