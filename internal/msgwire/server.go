package msgwire

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/limits"
)

// Operations: the last element of a message path.
const (
	OpRequest = "request"
	OpSend    = "send"
)

// PeerPattern is the http.ServeMux pattern of the host-to-host form;
// ReadPeerRequest reads its wildcards.
const PeerPattern = "POST /v1/namespaces/{ns}/actors/{name}/{op}"

// PeerPath is the path of op on the Actor namespace/name.
func PeerPath(namespace, name, op string) string {
	return "/v1/namespaces/" + url.PathEscape(namespace) + "/actors/" + url.PathEscape(name) + "/" + op
}

// ReadMessage reads a request's body, the message, bounded by the largest
// message any actor may take (the target's own bound is the engine's). On
// failure it has answered (413 or 400) and returns false.
func ReadMessage(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limits.MaxMessageBytesLimit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			WriteReason(w, http.StatusRequestEntityTooLarge, ReasonMessageTooLarge, fmt.Sprintf("message too large: more than %d bytes", limits.MaxMessageBytesLimit))
		} else {
			WriteReason(w, http.StatusBadRequest, ReasonBadRequest, "reading the message: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// WriteResponse answers a delivered message: 200 with a request's
// response, 202 for a send.
func WriteResponse(w http.ResponseWriter, op string, resp []byte) {
	if op == OpSend {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// PeerRequest is a host-to-host delivery as read from its HTTP request.
type PeerRequest struct {
	// Namespace and Name are the target Actor's; Op OpRequest or OpSend.
	Namespace, Name, Op string
	// Epoch is the target's epoch the sender routed to.
	Epoch int64
	// Timeout is what a request has left (0: no header).
	Timeout time.Duration
	// Delivery is the message, its Target "namespace/name", with From,
	// ID, TraceParent and Path from the headers.
	Delivery actorhost.Delivery
}

// ReadPeerRequest reads and checks a request of PeerPattern: the path's
// names, the headers, the bounded body. On failure it has answered (400,
// 404, 413) and returns false.
func ReadPeerRequest(w http.ResponseWriter, r *http.Request) (PeerRequest, bool) {
	p := PeerRequest{Namespace: r.PathValue("ns"), Name: r.PathValue("name"), Op: r.PathValue("op")}
	if p.Op != OpRequest && p.Op != OpSend {
		WriteReason(w, http.StatusNotFound, ReasonNotFound, "no such operation: "+truncate(p.Op)+" (request or send)")
		return p, false
	}
	if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
		WriteReason(w, http.StatusBadRequest, ReasonBadRequest, "bad namespace: "+errs[0])
		return p, false
	}
	if errs := validation.IsDNS1123Subdomain(p.Name); len(errs) > 0 {
		WriteReason(w, http.StatusBadRequest, ReasonBadRequest, "bad actor name: "+errs[0])
		return p, false
	}
	var err error
	bad := func(err error) (PeerRequest, bool) {
		WriteReason(w, http.StatusBadRequest, ReasonBadRequest, err.Error())
		return p, false
	}
	if p.Epoch, err = DecodeEpoch(r.Header.Get(HeaderEpoch)); err != nil {
		return bad(err)
	}
	if p.Timeout, err = DecodeTimeout(r.Header.Get(HeaderTimeout)); err != nil {
		return bad(err)
	}
	d := &p.Delivery
	d.Target = p.Namespace + "/" + p.Name
	if d.From, err = DecodeFrom(r.Header.Get(HeaderFrom)); err != nil {
		return bad(err)
	}
	if d.ID, err = DecodeMessageID(r.Header.Get(HeaderMessageID)); err != nil {
		return bad(err)
	}
	if p.Op == OpRequest {
		if d.Path, err = DecodePath(r.Header.Get(HeaderPath)); err != nil {
			return bad(err)
		}
	}
	// An invalid one starts a new trace in the engine; only its size is
	// bounded here.
	if tp := r.Header.Get(HeaderTraceParent); len(tp) <= 128 {
		d.TraceParent = tp
	}
	if d.Msg, err = readBody(w, r); err != nil {
		return p, false
	}
	return p, true
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, ok := ReadMessage(w, r)
	if !ok {
		return nil, errors.New("unreadable body")
	}
	return b, nil
}
