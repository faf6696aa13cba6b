package host

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/troupe-dev/troupe/internal/actordir"
	"github.com/troupe-dev/troupe/internal/chain"
)

// ChainPath is the chain endpoint's path pattern: GET it for an actor's
// chain as JSON lines (the format of `troupe chain show --json`), the
// current run's or, with ?actorID=, an earlier actor of that name's.
const ChainPath = "/actors/{namespace}/{name}/chain"

// listen opens a listener per distinct enabled address.
func (h *Host) listen() error {
	for _, addr := range []string{h.cfg.MetricsAddress, h.cfg.HealthProbeAddress, h.cfg.HTTPAddress} {
		if addr == "" || addr == "0" || h.listeners[addr] != nil {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		h.listeners[addr] = l
	}
	return nil
}

func (h *Host) closeListeners() {
	for _, l := range h.listeners {
		_ = l.Close()
	}
	if h.peer != nil {
		_ = h.peer.listener.Close()
	}
}

// serve starts one server per listener, with the handlers of every role
// that listens there.
func (h *Host) serve(wg *sync.WaitGroup) []*http.Server {
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if m := muxes[addr]; m != nil {
			return m
		}
		m := http.NewServeMux()
		muxes[addr] = m
		return m
	}
	if l := h.listeners[h.cfg.MetricsAddress]; l != nil {
		mux(h.cfg.MetricsAddress).Handle("GET /metrics", promhttp.HandlerFor(h.Gatherer(), promhttp.HandlerOpts{}))
	}
	if l := h.listeners[h.cfg.HealthProbeAddress]; l != nil {
		m := mux(h.cfg.HealthProbeAddress)
		m.HandleFunc("GET /healthz", h.healthz)
		m.HandleFunc("GET /readyz", h.readyz)
	}
	if l := h.listeners[h.cfg.HTTPAddress]; l != nil {
		m := mux(h.cfg.HTTPAddress)
		m.HandleFunc("GET /actors", h.listActors)
		m.HandleFunc("GET "+ChainPath, h.serveChain)
	}
	var servers []*http.Server
	for addr, m := range muxes {
		s := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
		l := h.listeners[addr]
		wg.Go(func() {
			if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error(err, "serving HTTP", "address", l.Addr().String())
			}
		})
	}
	return servers
}

func (h *Host) healthz(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
}

// readyz is ready once the host has seen its actors (cache synced) and its
// Lease is fresh: before that the controller would not place actors here.
func (h *Host) readyz(w http.ResponseWriter, _ *http.Request) {
	var problems []string
	if !h.cacheSynced.Load() {
		problems = append(problems, "the actor cache has not synced")
	}
	if !h.leaseFresh() {
		problems = append(problems, "the host lease is not renewed")
	}
	if len(problems) > 0 {
		http.Error(w, strings.Join(problems, "; "), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// ActorInfo is one entry of GET /actors.
type ActorInfo struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	ActorID    string `json:"actorID"`
	Epoch      int64  `json:"epoch"`
	Generation int64  `json:"generation"`
	State      string `json:"state"`
	Head       string `json:"head,omitempty"`
	Length     uint64 `json:"length"`
}

func (h *Host) listActors(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	runs := make([]*run, 0, len(h.runs))
	for _, r := range h.runs {
		runs = append(runs, r)
	}
	h.mu.Unlock()
	out := make([]ActorInfo, 0, len(runs))
	for _, r := range runs {
		r.mu.Lock()
		info := ActorInfo{Namespace: r.key.Namespace, Name: r.key.Name, ActorID: r.actorID, Epoch: r.epoch,
			Generation: r.generation, State: [...]string{"Starting", "Running", "Ended"}[r.state]}
		actor := r.actor
		r.mu.Unlock()
		if actor != nil {
			head, length := actor.Head()
			info.Head, info.Length = head.String(), length
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

var actorIDPattern = regexp.MustCompile(`^[0-9A-Za-z][-0-9A-Za-z]{0,63}$`)

// serveChain streams an actor's chain as JSON lines. A chain that turns out
// damaged mid-stream ends with a line {"error": "..."}.
func (h *Host) serveChain(w http.ResponseWriter, req *http.Request) {
	ns, name := req.PathValue("namespace"), req.PathValue("name")
	if len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		http.Error(w, "namespace and name must be a Kubernetes namespace and object name", http.StatusBadRequest)
		return
	}
	id := req.URL.Query().Get("actorID")
	if id != "" && !actorIDPattern.MatchString(id) {
		http.Error(w, "actorID must be an actor id (a UUID)", http.StatusBadRequest)
		return
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	var events func(func(chain.Event) error) error
	h.mu.Lock()
	r := h.runs[key]
	h.mu.Unlock()
	if r != nil && (id == "" || id == r.actorID) {
		id = r.actorID
		if a := r.getActor(); a != nil {
			// The live chain: flushed first, so the last events are in.
			events = a.Chain().Events
		}
	}
	if id == "" {
		id = actordir.Newest(h.cfg.DataDir, ns, name)
	}
	if events == nil && id != "" {
		path := actordir.ChainPath(actordir.Path(h.cfg.DataDir, ns, name, id))
		if _, err := os.Stat(path); err == nil {
			events = func(fn func(chain.Event) error) error { return chain.ReadFile(path, fn) }
		}
	}
	if events == nil {
		http.Error(w, fmt.Sprintf("no chain of actor %s/%s on this host", ns, name), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Troupe-Actor-ID", id)
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	err := events(func(e chain.Event) error {
		buf = append(chain.AppendJSON(buf[:0], &e), '\n')
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		line, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = bw.Write(append(line, '\n'))
	}
	_ = bw.Flush()
}
