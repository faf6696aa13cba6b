package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/gateway"
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
		check   func(*options) bool
	}{
		"defaults": {check: func(o *options) bool {
			return o.bindAddress == ":8443" && o.decisionTTL == gateway.DefaultDecisionTTL && o.maxTimeout == gateway.DefaultMaxTimeout && o.peer.tlsDir == "/etc/troupe/peer"
		}},
		"no cache":       {args: []string{"--authorization-cache-ttl=0s"}, check: func(o *options) bool { return o.decisionTTL == 0 }},
		"namespaces":     {args: []string{"--actor-namespaces=a,b", "--max-request-timeout=5s"}, check: func(o *options) bool { return o.peer.actorNamespaces == "a,b" && o.maxTimeout == 5*time.Second }},
		"negative ttl":   {args: []string{"--authorization-cache-ttl=-1s"}, wantErr: "must not be negative"},
		"zero timeout":   {args: []string{"--max-request-timeout=0s"}, wantErr: "must be positive"},
		"unknown flag":   {args: []string{"--no-such-flag"}, wantErr: "not defined"},
		"stray argument": {args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := parse(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("options %+v", o)
			}
		})
	}
}

// TestNoKubeconfig: a gateway pointed at a missing kubeconfig stops before
// serving anything, naming the file.
func TestNoKubeconfig(t *testing.T) {
	var stderr strings.Builder
	err := run([]string{"--kubeconfig=/no/such/kubeconfig"}, func(string) string { return "" }, &stderr)
	if err == nil || !strings.Contains(err.Error(), "connecting to the API server") || !strings.Contains(err.Error(), "/no/such/kubeconfig") {
		t.Fatalf("err = %v", err)
	}
}
