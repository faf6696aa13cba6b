package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/version"
)

// The message protocol of `troupe run`'s socket (docs/troupe-run.md): its
// paths carry the version, so a later cluster entry point can serve the
// same requests and a newer CLI can tell an older server.
const (
	// socketFileName is the socket's name in the state root.
	socketFileName = "run.sock"
	// lockSuffix names the lock file beside the socket: whoever holds it
	// owns the socket, and it holds that process's pid.
	lockSuffix = ".lock"
	// externalSender is how a chain records a message that came through
	// the socket.
	externalSender = "troupe-cli"
)

// stateRoot is ${XDG_STATE_HOME:-~/.local/state}/troupe.
func stateRoot() (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no state directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "troupe"), nil
}

// defaultSocketPath is ${XDG_STATE_HOME:-~/.local/state}/troupe/run.sock.
func defaultSocketPath() (string, error) {
	root, err := stateRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, socketFileName), nil
}

// socketPath is --socket, or the default.
func socketPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	p, err := defaultSocketPath()
	if err != nil {
		return "", usageError("%v; pass --socket", err)
	}
	return p, nil
}

// socketListener is the socket a `troupe run` owns: the lock file beside
// it proves the ownership, so a stale socket (its process died) is told
// from a live one without guessing from connection errors.
type socketListener struct {
	net.Listener
	path string
	lock *os.File
}

// listenSocket takes the socket at path: its directory is made (0700) when
// missing, the lock beside it is taken (another live owner is a usage
// error naming its pid), a stale socket is replaced, and the new one is
// made 0600.
func listenSocket(path string) (*socketListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the socket's directory: %w", err)
	}
	if def, err := defaultSocketPath(); err == nil && def == path {
		// Ours: a directory someone made wider is narrowed again, so the
		// socket is reachable by its owner only.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("making %s private: %w", dir, err)
		}
	}
	lock, err := os.OpenFile(path+lockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the socket's lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid := readPid(lock)
		_ = lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another troupe run"
			if pid > 0 {
				who = fmt.Sprintf("another troupe run (pid %d)", pid)
			}
			return nil, fmt.Errorf("%s is listening on %s; stop it, or pass --socket", who, path)
		}
		return nil, fmt.Errorf("locking %s: %w", path+lockSuffix, err)
	}
	fail := func(err error) (*socketListener, error) {
		_ = lock.Close()
		return nil, err
	}
	if err := lock.Truncate(0); err != nil {
		return fail(fmt.Errorf("writing the pid to %s: %w", lock.Name(), err))
	}
	if _, err := lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fail(fmt.Errorf("writing the pid to %s: %w", lock.Name(), err))
	}
	// Holding the lock, whatever is at path is stale, but only a socket
	// is replaced: --socket pointed at a file by mistake must not eat it.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fail(fmt.Errorf("%s exists and is not a socket", path))
		}
		if err := os.Remove(path); err != nil {
			return fail(fmt.Errorf("removing the stale socket: %w", err))
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fail(fmt.Errorf("listening on %s: %w", path, err))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return fail(fmt.Errorf("making %s private: %w", path, err))
	}
	return &socketListener{Listener: ln, path: path, lock: lock}, nil
}

// readPid is the pid a lock file holds, or 0.
func readPid(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Close closes the listener (which removes the socket) and releases the
// lock. The lock file stays: removing it would let a process that opened
// it already lock a file nobody else sees.
func (l *socketListener) Close() error {
	err := l.Listener.Close()
	if cerr := l.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// messageServer serves the message protocol over the engine's actors.
type messageServer struct {
	engine *actorhost.Engine
	// actors lists the run's actors, for /v1/info.
	actors func() []actorInfo
	// names maps the bare name of an actor whose YAML gives it a
	// namespace to namespace/name: names are unique in a run, so a caller
	// outside needs no namespace, while actors of one namespace reach one
	// another by bare name as in a cluster.
	names map[string]string
}

// actorInfo describes one actor of the run in /v1/info.
type actorInfo struct {
	Name  string `json:"name"`
	ID    string `json:"id"`
	Phase string `json:"phase"`
}

// errorBody is the JSON of every error the protocol answers
// (internal/msgwire, shared with the hosts' peer endpoint).
type errorBody = msgwire.ErrorBody

func (s *messageServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/actors/{target}/request", s.request)
	mux.HandleFunc("POST /v1/actors/{target}/send", s.send)
	mux.HandleFunc("GET /v1/info", s.info)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no such endpoint: %s %s (this is troupe run's message protocol v1)", r.Method, r.URL.Path))
	})
	return mux
}

// newHTTPServer is the server of the socket: headers and bodies are read
// in bounded time, a response waits as long as the request does (the
// engine bounds that by the target's request timeout).
func (s *messageServer) newHTTPServer() *http.Server {
	return &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: time.Minute}
}

// delivery reads a request's message: the body, bounded by the largest
// message any actor may take (the target's own bound is the engine's).
func (s *messageServer) delivery(w http.ResponseWriter, r *http.Request) (actorhost.Delivery, bool) {
	body, ok := msgwire.ReadMessage(w, r)
	if !ok {
		return actorhost.Delivery{}, false
	}
	target := r.PathValue("target")
	if qualified, ok := s.names[target]; ok {
		target = qualified
	}
	return actorhost.Delivery{
		From:        actorhost.Sender{External: externalSender},
		Target:      target,
		Msg:         body,
		TraceParent: r.Header.Get(msgwire.HeaderTraceParent),
	}, true
}

func (s *messageServer) request(w http.ResponseWriter, r *http.Request) {
	d, ok := s.delivery(w, r)
	if !ok {
		return
	}
	resp, err := s.engine.Request(r.Context(), d)
	if err != nil {
		writeDeliveryError(w, err)
		return
	}
	msgwire.WriteResponse(w, msgwire.OpRequest, resp)
}

func (s *messageServer) send(w http.ResponseWriter, r *http.Request) {
	d, ok := s.delivery(w, r)
	if !ok {
		return
	}
	if err := s.engine.Send(r.Context(), d); err != nil {
		writeDeliveryError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *messageServer) info(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"protocol": "v1", "pid": os.Getpid(), "version": version.String(), "actors": s.actors(),
	})
}

// deliveryStatus is err's HTTP status and reason (msgwire's table).
func deliveryStatus(err error) (int, string) { return msgwire.StatusOf(err) }

func writeDeliveryError(w http.ResponseWriter, err error) { msgwire.WriteError(w, err) }

func writeError(w http.ResponseWriter, status int, reason, msg string) {
	msgwire.WriteReason(w, status, reason, msg)
}
