package host

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestConfigActorNamespaces(t *testing.T) {
	many := make([]string, 1100)
	for i := range many {
		many[i] = fmt.Sprintf("%s-%04d", strings.Repeat("n", 58), i)
	}
	tests := map[string]struct {
		namespaces []string
		want       []string
		wantErr    string
		serves     map[string]bool
	}{
		"none: every namespace": {
			serves: map[string]bool{"team-a": true, "kube-system": true},
		},
		"sorted, each once": {
			namespaces: []string{"team-b", "team-a", "team-b"},
			want:       []string{"team-a", "team-b"},
			serves:     map[string]bool{"team-a": true, "team-b": true, "team-c": false, "kube-system": false, "": false},
		},
		"not a namespace name": {namespaces: []string{"team-a", "Team_B"}, wantErr: `actor namespace "Team_B"`},
		"empty name":           {namespaces: []string{""}, wantErr: `actor namespace ""`},
		"too many for the Lease": {
			namespaces: many, wantErr: "more than 65536",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := Config{NodeName: "n", PodName: "p", PodNamespace: "troupe-system", DataDir: t.TempDir(),
				RestConfig: &rest.Config{}, ActorNamespaces: tc.namespaces}.withDefaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.ActorNamespaces, tc.want) {
				t.Errorf("ActorNamespaces %q, want %q", cfg.ActorNamespaces, tc.want)
			}
			for ns, want := range tc.serves {
				if got := cfg.serves(ns); got != want {
					t.Errorf("serves(%q) = %v, want %v", ns, got, want)
				}
			}
		})
	}
}

// TestConfigStatusWritesPerSecond: the host-wide status-write cap follows
// the host's API rate unless set; negative turns it off.
func TestConfigStatusWritesPerSecond(t *testing.T) {
	tests := map[string]struct {
		qps       float32
		perSecond float64
		want      float64
	}{
		"default: a tenth of the default QPS": {want: DefaultKubeAPIQPS / 10},
		"follows a QPS given":                 {qps: 400, want: 40},
		"set":                                 {qps: 400, perSecond: 2.5, want: 2.5},
		"off":                                 {perSecond: -1, want: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := Config{NodeName: "n", PodName: "p", PodNamespace: "troupe-system", DataDir: t.TempDir(),
				RestConfig: &rest.Config{}, KubeAPIQPS: tc.qps, StatusWritesPerSecond: tc.perSecond}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StatusWritesPerSecond != tc.want {
				t.Fatalf("status writes per second %g, want %g", cfg.StatusWritesPerSecond, tc.want)
			}
		})
	}
}
