package msgwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/limits"
)

// ErrNotSent marks a delivery that failed before any byte of the request
// was written (no connection, a failed handshake): the peer cannot have
// enqueued it, so it may be sent again.
var ErrNotSent = errors.New("not sent")

// ClientOptions tune a Client; the zero value is sensible.
type ClientOptions struct {
	// DialTimeout bounds a connection's dial and TLS handshake; 0 is 3 s.
	DialTimeout time.Duration
	// IdleTimeout closes a pooled connection unused this long; 0 is 90 s.
	IdleTimeout time.Duration
	// PingTimeout: a connection silent for twice this long is pinged,
	// and closed when the ping is not answered within it; 0 is 5 s. A
	// peer that died without a FIN is noticed this way.
	PingTimeout time.Duration
	// SendTimeout bounds a send (and a request without a deadline in its
	// context); 0 is 30 s.
	SendTimeout time.Duration
}

// Client delivers messages to peer hosts over HTTP/2 with mutual TLS: one
// pooled connection per peer carries concurrent deliveries as streams. It
// is safe for concurrent use.
type Client struct {
	hc   *http.Client
	tr   *http.Transport
	opts ClientOptions
}

// NewClient makes a Client presenting and verifying with tlsConfig
// (CertFiles.ClientTLSConfig).
func NewClient(tlsConfig *tls.Config, opts ClientOptions) *Client {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 3 * time.Second
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 90 * time.Second
	}
	if opts.PingTimeout == 0 {
		opts.PingTimeout = 5 * time.Second
	}
	if opts.SendTimeout == 0 {
		opts.SendTimeout = 30 * time.Second
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: opts.DialTimeout,
		IdleConnTimeout:     opts.IdleTimeout,
		MaxIdleConnsPerHost: 4,
		ForceAttemptHTTP2:   true,
		Protocols:           &protos,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 2 * opts.PingTimeout,
			PingTimeout:     opts.PingTimeout,
		},
	}
	return &Client{hc: &http.Client{Transport: tr}, tr: tr, opts: opts}
}

// Close closes the pooled connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// maxErrorBody bounds an error answer's body read.
const maxErrorBody = 64 << 10

// Deliver delivers d to the Actor of d.Target ("namespace/name") on the
// host at endpoint (https://ip:port, the Lease's peer-endpoint), routed to
// the target's epoch; op is OpRequest or OpSend. It returns a request's
// response. Its errors: the server's, decoded (DecodeError: errors.Is the
// same actorhost error, ErrNotHere, ...); ErrNotSent wrapped when nothing
// was written; else a transport error after which the message may or may
// not have been delivered.
func (c *Client) Deliver(ctx context.Context, endpoint string, epoch int64, op string, d actorhost.Delivery) ([]byte, error) {
	ns, name, ok := strings.Cut(d.Target, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("deliver: target %q is not namespace/name", truncate(d.Target))
	}
	if op != OpRequest && op != OpSend {
		return nil, fmt.Errorf("deliver: no such operation %q", op)
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.SendTimeout)
		defer cancel()
	}
	var wrote atomic.Bool
	// wrote says whether the last attempt wrote the request: the
	// transport tries again on a new connection only when an attempt was
	// surely not processed (an HTTP/2 stream refused, a GOAWAY that
	// excludes it), and each attempt begins with GetConn.
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { wrote.Store(false) },
		WroteHeaders: func() { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+PeerPath(ns, name, op), bytes.NewReader(d.Msg))
	if err != nil {
		return nil, fmt.Errorf("deliver to %s: %w", d.Target, err)
	}
	h := req.Header
	h.Set("Content-Type", "application/octet-stream")
	h.Set(HeaderEpoch, strconv.FormatInt(epoch, 10))
	h.Set(HeaderFrom, EncodeFrom(d.From))
	if d.ID != "" {
		h.Set(HeaderMessageID, d.ID)
	}
	if d.TraceParent != "" {
		h.Set(HeaderTraceParent, d.TraceParent)
	}
	if op == OpRequest {
		if len(d.Path) > 0 {
			h.Set(HeaderPath, EncodePath(d.Path))
		}
		if dl, ok := ctx.Deadline(); ok {
			h.Set(HeaderTimeout, EncodeTimeout(time.Until(dl)))
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if (!wrote.Load() || (errors.As(err, &op) && op.Op == "dial")) && ctx.Err() == nil {
			return nil, fmt.Errorf("deliver to %s at %s: %w: %w", d.Target, endpoint, ErrNotSent, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("deliver to %s at %s: %w", d.Target, endpoint, ctx.Err())
		}
		return nil, fmt.Errorf("deliver to %s at %s: %w", d.Target, endpoint, err)
	}
	defer resp.Body.Close()
	limit := int64(maxErrorBody)
	if resp.StatusCode/100 == 2 {
		limit = limits.MaxMessageBytesLimit
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("deliver to %s: reading the answer: %w", d.Target, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("deliver to %s: the answer is over %d bytes", d.Target, limit)
	}
	if resp.StatusCode/100 != 2 {
		return nil, DecodeError(resp.StatusCode, body)
	}
	if op == OpSend {
		return nil, nil
	}
	return body, nil
}
