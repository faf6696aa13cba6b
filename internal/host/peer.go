package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/msgroute"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// The peer transport: other hosts (and the gateway) deliver messages to
// this host's actors on its peer endpoint, HTTP/2 with mutual TLS from
// the manager's CA (internal/msgwire), and this host's actors reach the
// actors of other hosts through a router that reads Actors and host
// Leases from informers (internal/msgroute).

// DefaultPeerAddress is where the peer endpoint listens by default.
const DefaultPeerAddress = ":9443"

// PeerConfig configures the host-to-host transport.
type PeerConfig struct {
	// Address is where the peer endpoint listens; "" is
	// DefaultPeerAddress.
	Address string
	// TLSDir holds the host's peer identity (msgwire.CAFile, CertFile,
	// KeyFile: the Secret <fullname>-host-peer-tls mounted), reloaded
	// when it changes. Required.
	TLSDir string
	// AdvertiseHost is the address peers dial (the pod IP, POD_IP from
	// the downward API); "" is the listener's own address (tests).
	AdvertiseHost string
	// MovingWait bounds the wait of a message for a moving target; 0 is
	// msgroute.DefaultMovingWait.
	MovingWait time.Duration
	// Client tunes the connections to the peers.
	Client msgwire.ClientOptions
}

func (p PeerConfig) withDefaults() (PeerConfig, error) {
	if p.Address == "" {
		p.Address = DefaultPeerAddress
	}
	if p.TLSDir == "" {
		return p, errors.New("the peer transport needs its TLS directory (--peer-tls-dir)")
	}
	if p.MovingWait < 0 {
		return p, fmt.Errorf("peer moving wait %s must be positive", p.MovingWait)
	}
	return p, nil
}

// peer is the host's peer transport, built by New when Config.Peer is
// set.
type peer struct {
	h        *Host
	files    *msgwire.CertFiles
	auth     *msgwire.PeerAuth
	client   *msgwire.Client
	router   *msgroute.Router
	cache    cache.Cache
	listener net.Listener
	endpoint string
	// authFailures counts the refused peers by reason.
	authFailures *prometheus.CounterVec
	// delivered counts the deliveries served, by operation and result
	// (the reason of an error, "ok").
	delivered *prometheus.CounterVec
}

// newPeer loads the identity, opens the listener, builds the routing
// cache and router; the cache is added to the host's manager.
func (h *Host) newPeer(ctx context.Context) error {
	cfg := h.cfg.Peer
	files, err := msgwire.LoadCertFiles(cfg.TLSDir)
	if err != nil {
		return err
	}
	p := &peer{h: h, files: files, auth: &msgwire.PeerAuth{Files: files}}
	p.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "troupe_host_peer_auth_failures_total",
		Help: "Deliveries refused on the peer endpoint because the peer failed authentication, by reason: no_certificate, untrusted (not of the peer CA), wrong_cn, external_sender (a host delivering for an external caller).",
	}, []string{"reason"})
	p.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "troupe_host_peer_deliveries_total",
		Help: "Deliveries served on the peer endpoint, by operation (send, request) and result (ok, or the error's reason, e.g. NotHere).",
	}, []string{"op", "result"})
	h.metrics.registry.MustRegister(p.authFailures, p.delivered)
	p.client = msgwire.NewClient(files.ClientTLSConfig(msgwire.HostCN), cfg.Client)
	p.cache, err = msgroute.NewCache(h.cfg.RestConfig, h.mgr.GetScheme(), h.cfg.ActorNamespaces, h.cfg.PodNamespace)
	if err != nil {
		return err
	}
	p.router, err = msgroute.New(ctx, p.cache, msgroute.Options{Client: p.client, LeaseNamespace: h.cfg.PodNamespace,
		MovingWait: cfg.MovingWait, Log: h.log.WithName("route")})
	if err != nil {
		return err
	}
	if err := h.mgr.Add(p.cache); err != nil {
		return fmt.Errorf("adding the routing cache: %w", err)
	}
	p.listener, err = net.Listen("tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Address, err)
	}
	host, port, _ := net.SplitHostPort(p.listener.Addr().String())
	if cfg.AdvertiseHost != "" {
		host = cfg.AdvertiseHost
	}
	p.endpoint = "https://" + net.JoinHostPort(host, port)
	h.peer = p
	return nil
}

// remote is what the engine asks for a target it does not run: the
// router, which finds its host.
func (p *peer) remote() actorhost.Remote { return p.router }

// serve runs the peer endpoint until the returned server is shut down.
func (p *peer) serve(wg *sync.WaitGroup) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc(msgwire.PeerPattern, p.deliver)
	mux.HandleFunc(msgwire.LogPattern, p.logs)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		msgwire.WriteReason(w, http.StatusNotFound, msgwire.ReasonNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (a Troupe host's peer endpoint, message protocol v1)")
	})
	s := &http.Server{
		Handler: mux, TLSConfig: p.files.ServerTLSConfig(), ConnContext: p.auth.ConnContext,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		// The protocol's headers are small (msgwire bounds each one).
		MaxHeaderBytes: 64 << 10,
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	s.Protocols = &protos
	ln := tls.NewListener(p.listener, s.TLSConfig)
	wg.Go(func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.h.log.Error(err, "serving the peer endpoint", "address", p.listener.Addr().String())
		}
	})
	return s
}

// deliver serves one delivery: the peer authenticated, the target run
// here at the epoch the sender routed to (else NotHere, and nothing is
// enqueued), then the engine as for a local message, with the sender,
// path, trace and id the sender gave.
func (p *peer) deliver(w http.ResponseWriter, r *http.Request) {
	cn, err := p.auth.Authenticate(r)
	if err != nil {
		p.refuse(w, err)
		return
	}
	req, ok := msgwire.ReadPeerRequest(w, r)
	if !ok {
		op := r.PathValue("op")
		if op != msgwire.OpSend && op != msgwire.OpRequest {
			op = "other" // the label's values stay bounded
		}
		p.delivered.WithLabelValues(op, msgwire.ReasonBadRequest).Inc()
		return
	}
	if err := msgwire.CheckSender(cn, req); err != nil {
		p.refuse(w, err)
		return
	}
	resp, err := p.deliverHere(r.Context(), req)
	result := "ok"
	if err != nil {
		_, result = msgwire.StatusOf(err)
		msgwire.WriteError(w, err)
	} else {
		msgwire.WriteResponse(w, req.Op, resp)
	}
	p.delivered.WithLabelValues(req.Op, result).Inc()
}

func (p *peer) refuse(w http.ResponseWriter, err error) {
	var ae *msgwire.AuthError
	reason := msgwire.AuthUntrusted
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	p.authFailures.WithLabelValues(reason).Inc()
	msgwire.WriteError(w, err)
}

// deliverHere hands req to the engine if this host runs its target at
// req.Epoch.
func (p *peer) deliverHere(ctx context.Context, req msgwire.PeerRequest) ([]byte, error) {
	key := types.NamespacedName{Namespace: req.Namespace, Name: req.Name}
	r, err := p.current(key, req.Epoch)
	if err != nil {
		return nil, err
	}
	d := req.Delivery
	d.Target = r.actorID // the run's own id: no name can stand for another actor
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	var resp []byte
	if req.Op == msgwire.OpSend {
		err = p.h.engine.Send(ctx, d)
	} else {
		resp, err = p.h.engine.Request(ctx, d)
	}
	// The run is ending (stopped, moved, the host shutting down, the
	// actor failed): the engine found no actor, closed its mailbox, or
	// answered a queued request it will never handle. It handled nothing,
	// so the sender may route again: NotHere. An actor that failed for
	// good is then refused by the sender's router from its status.
	if err != nil && (errors.Is(err, actorhost.ErrNoSuchActor) || errors.Is(err, actorhost.ErrActorNotRunning)) {
		return nil, fmt.Errorf("%w: %s is stopping on host %s: %s", msgwire.ErrNotHere, key, p.h.cfg.PodName, err.Error())
	}
	return resp, err
}

// current is the run of key at epoch when it runs here now; else a
// NotHere error.
func (p *peer) current(key types.NamespacedName, epoch int64) (*run, error) {
	p.h.mu.Lock()
	r := p.h.runs[key]
	p.h.mu.Unlock()
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: host %s does not run %s", msgwire.ErrNotHere, p.h.cfg.PodName, key)
	case r.epoch != epoch:
		return nil, fmt.Errorf("%w: host %s runs %s at epoch %d, not %d", msgwire.ErrNotHere, p.h.cfg.PodName, key, r.epoch, epoch)
	case !r.isRunning():
		return nil, fmt.Errorf("%w: %s is not running on host %s yet", msgwire.ErrNotHere, key, p.h.cfg.PodName)
	}
	return r, nil
}

// setLease publishes the peer endpoint in the host's Lease.
func (p *peer) setLease(ann map[string]string) {
	ann[v1alpha1.PeerEndpointAnnotation] = p.endpoint
	ann[v1alpha1.PeerProtocolAnnotation] = strconv.Itoa(v1alpha1.PeerProtocolVersion)
}
