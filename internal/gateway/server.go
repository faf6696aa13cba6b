package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/msgwire"
)

// The aggregated API's group and version, and the path prefix the API
// server proxies to the gateway.
const (
	Group        = "gateway.troupe.dev"
	Version      = "v1alpha1"
	GroupVersion = Group + "/" + Version
	pathPrefix   = "/apis/" + GroupVersion
)

// Deliverer hands a message to the Actor ns/name: op is "request" (the
// response is returned) or "send". Its errors are the message protocol's
// (actorhost's delivery errors, msgwire's, a *msgwire.RemoteError), which
// the gateway answers with their status and reason (msgwire.StatusOf).
type Deliverer interface {
	Deliver(ctx context.Context, ns, name, op string, d actorhost.Delivery) ([]byte, error)
}

// Server serves the aggregated API.
type Server struct {
	Authn     *Authenticator
	Authz     *Authorizer
	Deliverer Deliverer
	// LogSource serves the actors' logs; nil answers 404 (after
	// authorization).
	LogSource LogSource
	Log       logr.Logger
	Metrics   *Metrics
	// MaxTimeout caps a request's wait (and is its wait when the caller
	// gives none with ?timeout=).
	MaxTimeout time.Duration
	// Ready, when set, is asked by /readyz besides the authenticator.
	Ready func() error
}

// DefaultMaxTimeout is a request's longest wait: under the API server's
// own 60 s for a proxied request, so the caller gets the gateway's answer.
const DefaultMaxTimeout = 55 * time.Second

// Handler is the gateway's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathPrefix+"/namespaces/{ns}/actors/{name}/{op}", s.deliver)
	mux.HandleFunc("GET "+pathPrefix+"/namespaces/{ns}/actors/{name}/log", s.logs)
	mux.HandleFunc("GET /apis", s.discovery(groupList))
	mux.HandleFunc("GET /apis/"+Group, s.discovery(group))
	mux.HandleFunc("GET "+pathPrefix, s.discovery(resourceList))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no such endpoint: %s %s (the gateway serves POST %s/namespaces/NS/actors/NAME/request|send and GET .../log)", r.Method, r.URL.Path, pathPrefix))
	})
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.Authn.Ready() {
		http.Error(w, "the front-proxy configuration is not read yet", http.StatusServiceUnavailable)
		return
	}
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = io.WriteString(w, "ok")
}

// authenticate answers 401 and returns false when r's caller is not
// authenticated.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (User, bool) {
	u, err := s.Authn.Authenticate(r)
	if err != nil {
		reason := "Unknown"
		if ae, ok := isAuthError(err); ok {
			reason = ae.Reason
		}
		s.Metrics.authFailure(reason)
		s.Log.V(1).Info("refused an unauthenticated request", "reason", reason, "error", err.Error(), "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "Unauthenticated", err.Error())
		return User{}, false
	}
	return u, true
}

func (s *Server) deliver(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	op, ns, name := r.PathValue("op"), r.PathValue("ns"), r.PathValue("name")
	if op != "request" && op != "send" {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no such endpoint: POST %s (the operations are request and send)", r.URL.Path))
		return
	}
	result := "Internal"
	defer func() { s.Metrics.request(op, result, time.Since(begin)) }()
	fail := func(status int, reason, msg string) {
		result = reason
		writeError(w, status, reason, msg)
	}
	u, ok := s.authenticate(w, r)
	if !ok {
		result = "Unauthenticated"
		return
	}
	if msg := invalidTarget(ns, name); msg != "" {
		fail(http.StatusBadRequest, "BadRequest", msg)
		return
	}
	timeout := s.maxTimeout()
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("invalid timeout %q: a positive duration such as 5s", v))
			return
		}
		timeout = min(d, timeout)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	// Authorized before the body is read: a caller without the verb
	// cannot make the gateway buffer a message.
	dec, err := s.Authz.Authorize(ctx, u, op, ns, name)
	if err != nil {
		s.Log.Error(err, "authorization failed", "user", u.Name, "op", op, "namespace", ns, "actor", name)
		fail(http.StatusServiceUnavailable, "AuthorizationUnavailable", "could not check the caller's access: "+err.Error())
		return
	}
	if !dec.Allowed {
		msg := fmt.Sprintf("%s may not message actor %s/%s (%s): it needs verb %q on resource %q in API group %q in namespace %q", u.Name, ns, name, op, op, ActorResource, ActorGroup, ns)
		if dec.Reason != "" {
			msg += " (" + dec.Reason + ")"
		}
		s.Log.V(1).Info("refused an unauthorized request", "user", u.Name, "op", op, "namespace", ns, "actor", name)
		fail(http.StatusForbidden, "Forbidden", msg)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limits.MaxMessageBytesLimit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(http.StatusRequestEntityTooLarge, "MessageTooLarge", fmt.Sprintf("message too large: more than %d bytes", limits.MaxMessageBytesLimit))
		} else {
			fail(http.StatusBadRequest, "BadRequest", "reading the message: "+err.Error())
		}
		return
	}
	d := actorhost.Delivery{
		From:        actorhost.Sender{External: u.Sender()},
		Target:      ns + "/" + name,
		Msg:         body,
		TraceParent: r.Header.Get("traceparent"),
	}
	resp, err := s.Deliverer.Deliver(ctx, ns, name, op, d)
	if err != nil {
		status, reason := msgwire.StatusOf(err)
		if status == http.StatusInternalServerError {
			s.Log.Error(err, "delivery failed", "op", op, "namespace", ns, "actor", name)
		}
		result = reason
		msgwire.WriteError(w, err)
		return
	}
	if op == "send" {
		result = "Accepted"
		w.WriteHeader(http.StatusAccepted)
		return
	}
	result = "OK"
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// invalidTarget says what is wrong with an Actor's namespace and name from
// a request's path, or "" when both are valid.
func invalidTarget(ns, name string) string {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Sprintf("invalid namespace %q: %s", ns, errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Sprintf("invalid actor name %q: %s", name, errs[0])
	}
	return ""
}

func (s *Server) maxTimeout() time.Duration {
	if s.MaxTimeout > 0 {
		return s.MaxTimeout
	}
	return DefaultMaxTimeout
}

// The discovery documents: the API server reads them to list the group
// (kubectl api-resources) and to tell that the APIService is available.
var (
	resourceList = &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: GroupVersion,
		APIResources: []metav1.APIResource{
			{Name: "actors/request", Namespaced: true, Kind: "ActorMessage", Verbs: metav1.Verbs{"create"}},
			{Name: "actors/send", Namespaced: true, Kind: "ActorMessage", Verbs: metav1.Verbs{"create"}},
			{Name: "actors/log", Namespaced: true, Kind: "ActorLog", Verbs: metav1.Verbs{"get"}},
		},
	}
	gvDiscovery = metav1.GroupVersionForDiscovery{GroupVersion: GroupVersion, Version: Version}
	group       = &metav1.APIGroup{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:     Group, Versions: []metav1.GroupVersionForDiscovery{gvDiscovery}, PreferredVersion: gvDiscovery,
	}
	groupList = &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{*group},
	}
)

// discovery serves doc to an authenticated caller: any identity the API
// server vouches for may read it, as system:discovery grants for built-in
// groups.
func (s *Server) discovery(doc any) http.HandlerFunc {
	body, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("gateway: discovery document: %v", err)) // static data
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r); !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}
