// Command structured-logging is the seed's structured-logging use case: every
// log line is a JSON object with the message, a timestamp from the host, the
// actor's id and name, and a context; handling each request records its
// duration as request_duration_seconds (a gauge of the last, and the sum
// and count of all) and counts it in requests_handled_total (a counter:
// the name ends in _total).
//
// It handles a small fixed batch of requests on every init, one of which
// fails on purpose, to show both the completed and the failed log lines.
// It also handles real requests (troupe request structured-logging
// 'GET /orders', or a JSON {"id","client_ip","method","path"}; another
// actor's theater.Request): each is logged, timed and answered with
// {"status":...} (and "etag", or "error"). A sent message is handled the
// same way, with nobody to answer.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/troupe-dev/troupe/sdk/theater"
	_ "github.com/troupe-dev/troupe/sdk/theater/messages"
)

func init() {
	theater.OnInit(func(state []byte, hasState bool, _ string) ([]byte, error) {
		for _, req := range batch {
			if _, err := processRequest(req); err != nil && !errors.Is(err, errRequestFailed) {
				// A runtime call failed: that is the actor's failure, not the request's.
				return nil, err
			}
		}
		if !hasState {
			return nil, nil
		}
		return state, nil
	})
	theater.OnRequest(func(state []byte, _ bool, requestID string, data []byte) ([]byte, []byte, error) {
		resp, err := serve(requestID, data)
		return state, resp, err
	})
	theater.OnSend(func(state []byte, _ bool, msg []byte) ([]byte, error) {
		_, err := serve("", msg)
		return state, err
	})
}

// serve handles one request that came as a message: JSON, or "METHOD
// PATH". The answer is the response as JSON; a request the application
// fails is answered (with its error), not an error of the actor.
func serve(requestID string, data []byte) ([]byte, error) {
	req := request{}
	if err := json.Unmarshal(data, &req); err != nil {
		f := strings.Fields(string(data))
		if len(f) != 2 {
			return json.Marshal(map[string]any{"status": 400, "error": `want {"method","path",...} or "METHOD PATH"`})
		}
		req.Method, req.Path = f[0], f[1]
	}
	if req.ID == "" {
		req.ID = requestID
	}
	resp, err := processRequest(req)
	switch {
	case errors.Is(err, errRequestFailed):
		return json.Marshal(map[string]any{"status": 404, "error": err.Error()})
	case err != nil:
		return nil, err // a runtime call failed
	}
	return json.Marshal(resp)
}

func main() {}

// request is a request as the actor sees it.
type request struct {
	ID       string `json:"id"`
	ClientIP string `json:"client_ip"`
	Method   string `json:"method"`
	Path     string `json:"path"`
}

// response is what handling a request produces.
type response struct {
	Status int    `json:"status"`
	ETag   string `json:"etag,omitempty"`
}

var batch = []request{
	{ID: "req-1", ClientIP: "10.0.0.7", Method: "GET", Path: "/health"},
	{ID: "req-2", ClientIP: "10.0.0.8", Method: "POST", Path: "/orders"},
	{ID: "req-3", ClientIP: "10.0.0.9", Method: "GET", Path: "/missing"},
}

// errRequestFailed marks a request that failed in the application: logged,
// not fatal to the actor.
var errRequestFailed = errors.New("request failed")

// logEntry is the shape of every log line.
type logEntry struct {
	Message   string         `json:"message"`
	Timestamp uint64         `json:"timestamp"`
	Actor     actorRef       `json:"actor"`
	Context   map[string]any `json:"context"`
}

type actorRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// logStructured writes one JSON log line.
func logStructured(level theater.Level, message string, context map[string]any) error {
	line, err := json.Marshal(logEntry{
		Message:   message,
		Timestamp: theater.CurrentTimeMillis(),
		Actor:     actorRef{ID: theater.ActorID(), Name: theater.ActorName()},
		Context:   context,
	})
	if err != nil {
		return fmt.Errorf("failed to serialize log: %w", err)
	}
	return theater.Log(level, string(line))
}

func processRequest(req request) (response, error) {
	if err := logStructured(theater.LevelInfo, "Request received", map[string]any{
		"request_id": req.ID,
		"client_ip":  req.ClientIP,
		"method":     req.Method,
		"path":       req.Path,
	}); err != nil {
		return response{}, err
	}

	start := theater.CurrentTimeMillis()
	resp, handleErr := handleRequest(req)
	duration := theater.CurrentTimeMillis() - start

	if err := theater.RecordMetric("request_duration_seconds", float64(duration)/1000); err != nil {
		return response{}, err
	}
	if err := theater.RecordMetric("requests_handled_total", 1); err != nil {
		return response{}, err
	}

	if handleErr != nil {
		if err := logStructured(theater.LevelError, "Request failed", map[string]any{
			"request_id":  req.ID,
			"error":       handleErr.Error(),
			"duration_ms": duration,
		}); err != nil {
			return response{}, err
		}
		return response{}, fmt.Errorf("%w: %s: %w", errRequestFailed, req.ID, handleErr)
	}
	if err := logStructured(theater.LevelInfo, "Request completed", map[string]any{
		"request_id":  req.ID,
		"status":      resp.Status,
		"duration_ms": duration,
	}); err != nil {
		return response{}, err
	}
	return resp, nil
}

// handleRequest stands in for the application: it routes on the path and
// does a little real work for the routes it knows.
func handleRequest(req request) (response, error) {
	switch req.Path {
	case "/health":
		return response{Status: 200}, nil
	case "/orders":
		sum := sha256.Sum256([]byte(req.Method + " " + req.Path + " " + req.ID))
		return response{Status: 201, ETag: hex.EncodeToString(sum[:8])}, nil
	default:
		return response{}, fmt.Errorf("no route for %s %s (404)", req.Method, req.Path)
	}
}
