package main

import (
	"context"
	"errors"
	"flag"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/gateway"
)

// peerFlags are the gateway's identity towards the hosts (the manager's
// <fullname>-gateway-peer-tls Secret, contract section 2).
type peerFlags struct {
	caFile, certFile, keyFile string
}

func (p *peerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.caFile, "peer-ca-file", "/etc/troupe/peer/ca.crt", "CA of the hosts' peer certificates")
	fs.StringVar(&p.certFile, "peer-cert-file", "/etc/troupe/peer/tls.crt", "the gateway's peer client certificate (CN troupe-gateway)")
	fs.StringVar(&p.keyFile, "peer-key-file", "/etc/troupe/peer/tls.key", "the gateway's peer client key")
}

// newDeliverer returns what hands messages to the Actors' hosts.
//
// NOT DONE: the host-to-host client (internal/msgwire) and the router are
// the peer part of issue 14; until they are merged every delivery answers
// 503 NoRoute, after authentication and authorization.
func newDeliverer(_ context.Context, _ *rest.Config, _ *options, _ logr.Logger, _ prometheus.Registerer) (gateway.Deliverer, func() error, error) {
	return noRoute{}, nil, nil
}

type noRoute struct{}

func (noRoute) Deliver(context.Context, string, string, string, actorhost.Delivery) ([]byte, error) {
	return nil, &gateway.StatusError{Status: http.StatusServiceUnavailable, Reason: "NoRoute", Msg: errNoRoute.Error()}
}

var errNoRoute = errors.New("this gateway cannot reach the hosts yet (built without the peer transport)")
