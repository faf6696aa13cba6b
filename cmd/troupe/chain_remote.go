package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

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
		return &exitError{code: exitUnreadable, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return &exitError{code: exitUnreadable, err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: exitUnreadable, err: fmt.Errorf("reading the chain of %s: %w", ref, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &exitError{code: exitUnreadable, err: fmt.Errorf("reading the chain of %s from %s: %s: %s",
			ref, base, resp.Status, strings.TrimSpace(string(msg)))}
	}
	err = readRemoteChain(resp.Body, func(e *chain.Event) error { return p.troupe(e) })
	if ferr := p.flush(); err == nil {
		err = ferr
	}
	return err
}

// readRemoteChain decodes and verifies a host's JSON lines, calling fn with
// each event: damage is exit 1, like a damaged file, a failed read exit 2.
func readRemoteChain(r io.Reader, fn func(*chain.Event) error) error {
	var fnErr error
	err := chain.ReadJSON(r, func(e *chain.Event) error {
		fnErr = fn(e)
		return fnErr
	})
	switch {
	case err == nil || (fnErr != nil && errors.Is(err, fnErr)):
		return err
	case errors.Is(err, chain.ErrCorrupt):
		return &exitError{code: exitBroken, err: err}
	default:
		return &exitError{code: exitUnreadable, err: fmt.Errorf("reading the chain: %w", err)}
	}
}
