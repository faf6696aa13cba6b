package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// maxRemoteLine bounds one JSON line from a host: an event's data is at
// most 16 MiB, base64 makes it 22.
const maxRemoteLine = 32 << 20

// remoteEvent is one line of a host's chain endpoint: the format of
// `troupe chain show --json` (chain.AppendJSON), or {"error": ...} when the
// host found the chain damaged while sending it.
type remoteEvent struct {
	Seq          uint64          `json:"seq"`
	Hash         string          `json:"hash"`
	Parent       string          `json:"parent"`
	Kind         string          `json:"kind"`
	Op           string          `json:"op"`
	Time         string          `json:"time"`
	Data         json.RawMessage `json:"data"`
	DataEncoding string          `json:"data_encoding"`
	Error        string          `json:"error"`
}

// chainURL is the host endpoint of actor ref (NAMESPACE/NAME).
func chainURL(base, ref string) (string, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%q: with --from-host, name the actor as NAMESPACE/NAME", ref)
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--from-host %q is not a URL", base)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/actors/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/chain"
	return u.String(), nil
}

// showFromHost prints the chain a host serves for actor ref. Every event is
// re-hashed and its parent link and sequence checked, so a stream that is
// damaged (or tampered with on the way) fails like a damaged file: exit 1.
func showFromHost(ctx context.Context, base, ref string, p *printer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	target, err := chainURL(base, ref)
	if err != nil {
		return &exitError{exitUnreadable, err}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return &exitError{exitUnreadable, err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{exitUnreadable, fmt.Errorf("reading the chain of %s: %w", ref, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &exitError{exitUnreadable, fmt.Errorf("reading the chain of %s from %s: %s: %s",
			ref, base, resp.Status, strings.TrimSpace(string(msg)))}
	}
	err = readRemoteChain(resp.Body, func(e *chain.Event) error { return p.troupe(e) })
	if ferr := p.flush(); err == nil {
		err = ferr
	}
	return err
}

// readRemoteChain decodes and verifies a host's JSON lines, calling fn with
// each event.
func readRemoteChain(r io.Reader, fn func(*chain.Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxRemoteLine)
	var prev *chain.Event
	for n := 0; sc.Scan(); n++ {
		e, err := decodeRemoteEvent(sc.Bytes())
		if err != nil {
			return &exitError{exitBroken, fmt.Errorf("line %d: %w", n+1, err)}
		}
		if want := chain.ComputeHash(e); want != e.Hash {
			return &exitError{exitBroken, fmt.Errorf("event %d: its hash is %s, its content hashes to %s", e.Seq, e.Hash.Short(), want.Short())}
		}
		if prev != nil && (e.Parent != prev.Hash || e.Seq != prev.Seq+1) {
			return &exitError{exitBroken, fmt.Errorf("event %d does not follow event %d (parent %s, want %s)", e.Seq, prev.Seq, e.Parent.Short(), prev.Hash.Short())}
		}
		if err := fn(e); err != nil {
			return err
		}
		prev = e
	}
	if err := sc.Err(); err != nil {
		return &exitError{exitUnreadable, fmt.Errorf("reading the chain: %w", err)}
	}
	return nil
}

func decodeRemoteEvent(line []byte) (*chain.Event, error) {
	var re remoteEvent
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&re); err != nil {
		return nil, fmt.Errorf("not a chain event: %w", err)
	}
	if re.Error != "" {
		return nil, fmt.Errorf("the host: %s", re.Error)
	}
	e := &chain.Event{Seq: re.Seq, Kind: chain.Kind(re.Kind), Op: re.Op}
	var err error
	if e.Hash, err = decodeHash(re.Hash); err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	if e.Parent, err = decodeHash(re.Parent); err != nil {
		return nil, fmt.Errorf("parent: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, re.Time)
	if err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	e.Time = t.UnixNano()
	switch re.DataEncoding {
	case "":
		e.Data = []byte(re.Data)
	case "base64":
		var s string
		if err := json.Unmarshal(re.Data, &s); err != nil {
			return nil, errors.New("data: base64 data must be a JSON string")
		}
		if e.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown data_encoding %q", re.DataEncoding)
	}
	return e, nil
}

func decodeHash(s string) (chain.Hash, error) {
	var h chain.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%q is not 64 hex digits", s)
	}
	copy(h[:], b)
	return h, nil
}
