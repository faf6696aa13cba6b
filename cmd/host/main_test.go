package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/troupe-dev/troupe/internal/cmdutil"
	"github.com/troupe-dev/troupe/internal/diskbudget"
)

func TestParse(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	full := env("NODE_NAME", "node-a", "POD_NAME", "troupe-host-x", "POD_NAMESPACE", "troupe-system")
	tests := map[string]struct {
		args    []string
		getenv  func(string) string
		wantErr string
		check   func(*testing.T, *options)
	}{
		"defaults": {getenv: full, check: func(t *testing.T, o *options) {
			if o.cfg.NodeName != "node-a" || o.cfg.PodName != "troupe-host-x" || o.cfg.PodNamespace != "troupe-system" {
				t.Fatalf("downward API values: %+v", o.cfg)
			}
			if o.cfg.LeaseDuration != 15*time.Second || o.cfg.Capacity != 1000 || o.cfg.HTTPAddress != "127.0.0.1:8082" {
				t.Fatalf("defaults: %+v", o.cfg)
			}
			if o.cfg.Disk != diskbudget.DefaultNodeLimits() || o.cfg.DiskPollInterval != time.Second {
				t.Fatalf("disk defaults: %+v, %s", o.cfg.Disk, o.cfg.DiskPollInterval)
			}
		}},
		"disk flags": {args: []string{"--node-chain-bytes-per-second", "1000", "--node-chain-burst-bytes", "2000", "--node-chain-events-per-second", "-1",
			"--node-chain-burst-events", "5", "--disk-min-free-bytes", "123", "--disk-min-free-percent", "2.5", "--disk-poll-interval", "3s"}, getenv: full,
			check: func(t *testing.T, o *options) {
				want := diskbudget.NodeLimits{BytesPerSecond: 1000, BurstBytes: 2000, EventsPerSecond: -1, BurstEvents: 5, MinFreeBytes: 123, MinFreePercent: 2.5}
				if o.cfg.Disk != want || o.cfg.DiskPollInterval != 3*time.Second {
					t.Fatalf("disk flags: %+v, %s", o.cfg.Disk, o.cfg.DiskPollInterval)
				}
			}},
		"flags": {args: []string{"--data-dir", "/d", "--lease-duration", "3s", "--capacity", "5", "--http-bind-address", "0"}, getenv: full,
			check: func(t *testing.T, o *options) {
				if o.cfg.DataDir != "/d" || o.cfg.LeaseDuration != 3*time.Second || o.cfg.Capacity != 5 || o.cfg.HTTPAddress != "0" {
					t.Fatalf("flags: %+v", o.cfg)
				}
			}},
		"memory flags": {args: []string{"--memory-limit", "1Gi", "--memory-reserve", "100Mi"}, getenv: full,
			check: func(t *testing.T, o *options) {
				if o.cfg.MemoryLimit != 1<<30 || o.cfg.MemoryReserve != 100<<20 {
					t.Fatalf("memory: limit %d, reserve %d", o.cfg.MemoryLimit, o.cfg.MemoryReserve)
				}
			}},
		"otlp endpoint": {args: []string{"--otlp-endpoint=http://otel-collector.observability:4318"}, getenv: full,
			check: func(t *testing.T, o *options) {
				if o.cfg.OTLPEndpoint != "http://otel-collector.observability:4318" {
					t.Fatalf("OTLPEndpoint %q", o.cfg.OTLPEndpoint)
				}
			}},
		"memory budget off": {args: []string{"--memory-limit", "0"}, getenv: full,
			check: func(t *testing.T, o *options) {
				if o.cfg.MemoryLimit != 0 || o.memoryLimit != "0" {
					t.Fatalf("--memory-limit 0: %d %q", o.cfg.MemoryLimit, o.memoryLimit)
				}
			}},
		"bad memory limit": {args: []string{"--memory-limit", "lots"}, getenv: full, wantErr: `--memory-limit "lots": want a quantity`},
		"negative reserve": {args: []string{"--memory-reserve", "-1Mi"}, getenv: full, wantErr: `--memory-reserve "-1Mi"`},
		"compile flags": {args: []string{"--max-concurrent-compiles", "3", "--compile-timeout", "90s"}, getenv: full,
			check: func(t *testing.T, o *options) {
				if o.cfg.MaxConcurrentCompiles != 3 || o.cfg.CompileTimeout != 90*time.Second {
					t.Fatalf("compile flags: %+v", o.cfg)
				}
			}},
		"actor namespaces": {args: []string{"--actor-namespaces=team-b, team-a"}, getenv: full, check: func(t *testing.T, o *options) {
			if !slices.Equal(o.cfg.ActorNamespaces, []string{"team-b", "team-a"}) {
				t.Fatalf("actor namespaces %q", o.cfg.ActorNamespaces)
			}
		}},
		"every namespace by default": {getenv: full, check: func(t *testing.T, o *options) {
			if o.cfg.ActorNamespaces != nil {
				t.Fatalf("actor namespaces %q without the flag, want none (every namespace)", o.cfg.ActorNamespaces)
			}
		}},
		"no archive by default": {getenv: full, check: func(t *testing.T, o *options) {
			if o.cfg.Archive != nil {
				t.Fatalf("archive %+v without --archive-bucket", o.cfg.Archive)
			}
		}},
		"archive": {args: []string{"--archive-endpoint=http://store:7070", "--archive-bucket=troupe", "--archive-prefix=prod", "--archive-path-style",
			"--archive-recovery-point=5s", "--archive-segment-bytes=1Mi", "--archive-local-tail=-1",
			"--archive-flush-timeout=2m", "--archive-uploads=4", "--archive-restore-retry=5s"},
			getenv: func(k string) string {
				if k == "AWS_ACCESS_KEY_ID" || k == "AWS_SECRET_ACCESS_KEY" {
					return "k-" + k
				}
				return full(k)
			},
			check: func(t *testing.T, o *options) {
				a := o.cfg.Archive
				if a == nil || a.Store == nil {
					t.Fatal("no archive")
				}
				if a.RecoveryPoint != 5*time.Second || a.SegmentBytes != 1<<20 || a.LocalTail != -1 || a.Where != "s3://troupe/prod (endpoint http://store:7070)" ||
					a.FlushTimeout != 2*time.Minute || a.Uploads != 4 || a.RestoreRetry != 5*time.Second {
					t.Fatalf("archive %+v", a)
				}
			}},
		"archive defaults": {args: []string{"--archive-bucket=troupe", "--archive-endpoint=store:7070", "--archive-insecure"}, getenv: full,
			check: func(t *testing.T, o *options) {
				a := o.cfg.Archive
				if a == nil || a.RecoveryPoint != 10*time.Second || a.SegmentBytes != 0 || a.LocalTail != 0 ||
					a.FlushTimeout != 30*time.Second || a.Uploads != 16 || a.RestoreRetry != 30*time.Second {
					t.Fatalf("archive %+v: want the host's defaults (0 = default)", a)
				}
			}},
		"archive settings without a bucket": {args: []string{"--archive-local-tail=1Gi"}, getenv: full, wantErr: "--archive-local-tail without --archive-bucket"},
		"archive without a bucket":          {args: []string{"--archive-endpoint=http://store:7070"}, getenv: full, wantErr: `bucket ""`},
		"bad segment size":                  {args: []string{"--archive-bucket=troupe", "--archive-segment-bytes=-1"}, getenv: full, wantErr: `--archive-segment-bytes "-1"`},
		"bad flush timeout":                 {args: []string{"--archive-bucket=troupe", "--archive-flush-timeout=-1s"}, getenv: full, wantErr: "--archive-flush-timeout -1s: must be positive"},
		"bad restore retry":                 {args: []string{"--archive-bucket=troupe", "--archive-restore-retry=0s"}, getenv: full, wantErr: "--archive-restore-retry 0s: must be positive"},
		"no uploads":                        {args: []string{"--archive-bucket=troupe", "--archive-uploads=0"}, getenv: full, wantErr: "--archive-uploads 0: must be positive"},
		"uploads without a bucket":          {args: []string{"--archive-uploads=2"}, getenv: full, wantErr: "--archive-uploads without --archive-bucket"},
		"bad recovery point":                {args: []string{"--archive-bucket=troupe", "--archive-recovery-point=0s"}, getenv: full, wantErr: "must be positive"},
		"empty actor namespace":             {args: []string{"--actor-namespaces=team-a,,team-b"}, getenv: full, wantErr: "empty entry"},
		"otlp endpoint not a URL":           {args: []string{"--otlp-endpoint=collector:4318"}, getenv: full, wantErr: "want an http or https URL"},
		"no downward API":                   {getenv: env(), wantErr: "NODE_NAME, POD_NAME, POD_NAMESPACE must be set"},
		"no pod name":                       {getenv: env("NODE_NAME", "n", "POD_NAMESPACE", "ns"), wantErr: "POD_NAME must be set"},
		"stray argument":                    {args: []string{"extra"}, getenv: full, wantErr: "unexpected arguments"},
		"unknown flag":                      {args: []string{"--nope"}, getenv: full, wantErr: "flag provided but not defined"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := parse(tc.args, tc.getenv, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestLogger(t *testing.T) {
	if _, err := cmdutil.NewLogger("loud", "json", io.Discard); err == nil {
		t.Fatal("accepted an unknown level")
	}
	if _, err := cmdutil.NewLogger("info", "xml", io.Discard); err == nil {
		t.Fatal("accepted an unknown format")
	}
	var b strings.Builder
	l, err := cmdutil.NewLogger("info", "json", &b)
	if err != nil {
		t.Fatal(err)
	}
	l.V(1).Info("hidden")
	l.Info("shown", "k", "v")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"k":"v"`) {
		t.Fatalf("log output %q", b.String())
	}
}

// TestMemoryLimits: the host's memory limit sets the Go runtime's soft
// limit (GOMEMLIMIT) unless the environment gave one, and --memory-limit
// wins over the cgroup's.
func TestMemoryLimits(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	full := func(extra ...string) func(string) string {
		m := map[string]string{"NODE_NAME": "n", "POD_NAME": "p", "POD_NAMESPACE": "ns"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := map[string]struct {
		args        []string
		getenv      func(string) string
		wantTrack   bool
		wantGoLimit int64 // 0: unchanged
	}{
		"a limit sets GOMEMLIMIT to all but a sixteenth": {args: []string{"--memory-limit", "1Gi"}, getenv: full(), wantTrack: true, wantGoLimit: 1<<30 - 1<<26},
		"GOMEMLIMIT in the environment wins":             {args: []string{"--memory-limit", "1Gi"}, getenv: full("GOMEMLIMIT", "900MiB")},
		"no limit, no budget":                            {args: []string{"--memory-limit", "0"}, getenv: full()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			o, err := parse(tc.args, tc.getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if err := memoryLimits(o, tc.getenv, logr.Discard()); err != nil {
				t.Fatal(err)
			}
			if o.cfg.TrackProcessMemory != tc.wantTrack {
				t.Fatalf("TrackProcessMemory = %v, want %v", o.cfg.TrackProcessMemory, tc.wantTrack)
			}
			want := tc.wantGoLimit
			if want == 0 {
				want = math.MaxInt64
			}
			if got := debug.SetMemoryLimit(-1); got != want {
				t.Fatalf("Go memory limit %d, want %d", got, want)
			}
		})
	}
}

// TestLogOutputNeverBlocks: with stderr taking nothing (a stalled container
// runtime), logging returns at once however much is logged, so a guest's
// log call never waits on it; once stderr reads again it gets whole
// records, and one that counts the records dropped.
func TestLogOutputNeverBlocks(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			r, w := io.Pipe()
			log, out, err := newLogOutput("info", format, w)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range 20_000 {
					log.WithName("actor").Info(strings.Repeat("m", 300), "i", i)
				}
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("logging blocked on a stderr that takes nothing")
			}
			if out.Dropped() == 0 {
				t.Fatal("nothing dropped")
			}
			read := make(chan string, 1)
			go func() { b, _ := io.ReadAll(r); read <- string(b) }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := out.Close(ctx); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()
			got := <-read
			if !strings.Contains(got, "log lines dropped") {
				t.Fatal("no record counts the dropped lines")
			}
			if format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
					if !json.Valid([]byte(line)) {
						t.Fatalf("not a JSON record: %.80q", line)
					}
				}
			}
		})
	}
}
