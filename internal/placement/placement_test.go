package placement

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/textutil"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func live(name string, load int) Host {
	return Host{Name: name, Node: "node-" + name, Expiry: now.Add(10 * time.Second), Capacity: 10, Load: load}
}

func TestPick(t *testing.T) {
	dead := live("dead", 0)
	dead.Expiry = now.Add(-time.Second)
	expiringNow := live("edge", 0)
	expiringNow.Expiry = now // live means strictly before expiry
	gpu := live("gpu", 5)
	gpu.NodeLabels = map[string]string{"accel": "gpu", "zone": "a"}
	tainted := live("tainted", 0)
	tainted.Taints = []corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}}
	noExec := live("noexec", 0)
	noExec.Taints = []corev1.Taint{{Key: "gone", Effect: corev1.TaintEffectNoExecute}}
	soft := live("soft", 0)
	soft.Taints = []corev1.Taint{{Key: "meh", Effect: corev1.TaintEffectPreferNoSchedule}}
	full := live("full", 10)
	zero := live("zero", 0)
	zero.Capacity = 0
	numeric := live("numeric", 0)
	numeric.Taints = []corev1.Taint{{Key: "level", Value: "5", Effect: corev1.TaintEffectNoSchedule}}

	tests := map[string]struct {
		hosts   []Host
		req     Request
		want    string
		wantErr string
	}{
		"no hosts at all": {
			wantErr: "no host lease exists",
		},
		"least loaded wins": {
			hosts: []Host{live("a", 3), live("b", 1), live("c", 2)},
			want:  "b",
		},
		"ties broken by name": {
			hosts: []Host{live("b", 1), live("a", 1), live("c", 1)},
			want:  "a",
		},
		"dead host skipped even when idle": {
			hosts: []Host{dead, live("a", 9)},
			want:  "a",
		},
		"lease expiring exactly now is dead": {
			hosts:   []Host{expiringNow},
			wantErr: "0/1 hosts available: 1 lease expired",
		},
		"only dead hosts": {
			hosts:   []Host{dead, dead},
			wantErr: "0/2 hosts available: 2 lease expired",
		},
		"nodeSelector picks the matching node despite load": {
			hosts: []Host{live("a", 0), gpu},
			req:   Request{NodeSelector: map[string]string{"accel": "gpu"}},
			want:  "gpu",
		},
		"nodeSelector needs every label": {
			hosts:   []Host{gpu},
			req:     Request{NodeSelector: map[string]string{"accel": "gpu", "zone": "b"}},
			wantErr: "1 node didn't match nodeSelector",
		},
		"nodeSelector against a host without a Node": {
			hosts:   []Host{live("a", 0)},
			req:     Request{NodeSelector: map[string]string{"accel": "gpu"}},
			wantErr: "node didn't match nodeSelector",
		},
		"NoSchedule taint not tolerated": {
			hosts: []Host{tainted, live("a", 5)},
			want:  "a",
		},
		"NoSchedule taint tolerated by Equal": {
			hosts: []Host{tainted, live("a", 5)},
			req: Request{Tolerations: []corev1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "batch", Effect: corev1.TaintEffectNoSchedule},
			}},
			want: "tainted",
		},
		"toleration with another value does not tolerate": {
			hosts: []Host{tainted},
			req: Request{Tolerations: []corev1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web"},
			}},
			wantErr: "1 untolerated taint",
		},
		"Exists with empty key tolerates everything": {
			hosts: []Host{tainted, noExec},
			req:   Request{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
			want:  "noexec",
		},
		"NoExecute taint not tolerated": {
			hosts:   []Host{noExec},
			wantErr: "1 untolerated taint",
		},
		"toleration for another effect does not tolerate": {
			hosts: []Host{noExec},
			req: Request{Tolerations: []corev1.Toleration{
				{Key: "gone", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			}},
			wantErr: "1 untolerated taint",
		},
		"PreferNoSchedule taints are ignored": {
			hosts: []Host{soft},
			want:  "soft",
		},
		"comparison operators match nothing": {
			hosts: []Host{numeric},
			req: Request{Tolerations: []corev1.Toleration{
				{Key: "level", Operator: corev1.TolerationOpGt, Value: "1"},
			}},
			wantErr: "1 untolerated taint",
		},
		"full hosts skipped": {
			hosts: []Host{full, live("a", 9)},
			want:  "a",
		},
		"capacity zero takes nothing": {
			hosts:   []Host{zero},
			wantErr: "0/1 hosts available: 1 full",
		},
		"reasons are counted and sorted": {
			hosts:   []Host{dead, full, full, tainted},
			wantErr: "0/4 hosts available: 1 lease expired, 1 untolerated taint, 2 full",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Pick(tc.hosts, tc.req, now)
			if tc.wantErr != "" {
				var nh *NoHostError
				if !errors.As(err, &nh) {
					t.Fatalf("Pick = %q, %v; want a *NoHostError", got.Name, err)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.wantErr) {
					t.Fatalf("error %q; want it to contain %q", msg, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Pick: %v", err)
			}
			if got.Name != tc.want {
				t.Fatalf("Pick = %q; want %q", got.Name, tc.want)
			}
		})
	}
}

// TestPickProtocol: only hosts whose Lease declares a protocol version this
// manager knows take actors, and a NoHostError names the others.
func TestPickProtocol(t *testing.T) {
	current, newer := strconv.Itoa(v1alpha1.ProtocolVersion), strconv.Itoa(v1alpha1.ProtocolVersion+1)
	knows := "; this manager knows " + KnownProtocols()
	speaks := func(host string) string { return "host " + host + " speaks protocol v" + newer + knows }
	tests := map[string]struct {
		// declared is each live, empty host's protocol annotation.
		declared map[string]string
		dead     bool
		want     string
		wantErr  string
	}{
		"the current version":                            {declared: map[string]string{"b": current}, want: "b"},
		"no annotation: a v0.1.0 host, version 1":        {declared: map[string]string{"b": ""}, want: "b"},
		"a newer version is skipped":                     {declared: map[string]string{"a": newer, "b": current}, want: "b"},
		"only a newer version: the error names the host": {declared: map[string]string{"h": newer}, wantErr: "0/1 hosts available: 1 unknown protocol version (" + speaks("h") + ")"},
		"a malformed version is no version": {declared: map[string]string{"h": "v1"},
			wantErr: `(host h declares protocol "v1", which is no version` + knows + ")"},
		"a long malformed version is quoted in part": {declared: map[string]string{"h": strings.Repeat("x", 5000)},
			wantErr: `(host h declares protocol "` + strings.Repeat("x", maxQuotedProtocol-len(textutil.Ellipsis)) + textutil.Ellipsis + `", which is no version`},
		"hosts of a newer version leave the others be": {declared: map[string]string{"h1": newer, "h2": newer, "h3": newer, "h4": newer, "ok": current},
			want: "ok"},
		"three hosts are named, the fourth counted": {declared: map[string]string{"h1": newer, "h2": newer, "h3": newer, "h4": newer},
			wantErr: "4 unknown protocol version (" + speaks("h1") + "; " + speaks("h2") + "; " + speaks("h3") + "; and 1 more)"},
		"a dead host is dead, whatever its version": {declared: map[string]string{"h": newer}, dead: true,
			wantErr: "0/1 hosts available: 1 lease expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var hosts []Host
			for h, v := range tc.declared {
				host := live(h, 0)
				host.Protocol = v
				if tc.dead {
					host.Expiry = now
				}
				hosts = append(hosts, host)
			}
			slices.SortFunc(hosts, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
			got, err := Pick(hosts, Request{}, now)
			if tc.wantErr == "" {
				if err != nil || got.Name != tc.want {
					t.Fatalf("Pick = %q, %v; want %q", got.Name, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Pick = %q, %v; want an error containing %q", got.Name, err, tc.wantErr)
			}
		})
	}
}

// TestPickNamespace: a host whose Lease lists namespaces takes only the
// Actors of those; one without the annotation takes every namespace's; and
// when no host whose version is known serves the namespace, the error says
// so, names it and the chart value that fixes it.
func TestPickNamespace(t *testing.T) {
	serving := func(name string, load int, namespaces ...string) Host {
		h := live(name, load)
		h.Namespaces = namespaces
		if namespaces == nil {
			h.Namespaces = []string{}
		}
		return h
	}
	every := live("every", 5)
	newer := serving("newer", 0, "team-c")
	newer.Protocol = strconv.Itoa(v1alpha1.ProtocolVersion + 1)
	deadC := serving("dead-c", 0, "team-c")
	deadC.Expiry = now
	hint := "no host runs Actors of namespace team-c: add it to the chart value host.actorNamespaces"
	tests := map[string]struct {
		hosts         []Host
		want          string
		wantErr       string
		wantNotServed bool
	}{
		"a host that serves it, though busier": {
			hosts: []Host{serving("ab", 0, "team-a", "team-b"), serving("c", 3, "team-c")},
			want:  "c",
		},
		"a host of every namespace": {
			hosts: []Host{serving("ab", 0, "team-a", "team-b"), every},
			want:  "every",
		},
		"the least loaded of those that serve it": {
			hosts: []Host{serving("c1", 4, "team-c"), serving("c2", 2, "team-a", "team-c"), serving("ab", 0, "team-a")},
			want:  "c2",
		},
		"no host serves it": {
			hosts:         []Host{serving("ab", 0, "team-a", "team-b"), serving("a", 0, "team-a")},
			wantErr:       "0/2 hosts available: 2 namespace not served; " + hint,
			wantNotServed: true,
		},
		"an unreadable annotation serves nothing": {
			hosts:         []Host{serving("bad", 0)},
			wantErr:       "1 namespace not served; " + hint,
			wantNotServed: true,
		},
		"served by a dead host only: it may come back": {
			hosts:   []Host{deadC, serving("ab", 0, "team-a")},
			wantErr: "0/2 hosts available: 1 lease expired, 1 namespace not served",
		},
		"served by a full host only: wait for room": {
			hosts:   []Host{serving("full", 10, "team-c"), serving("ab", 0, "team-a")},
			wantErr: "0/2 hosts available: 1 full, 1 namespace not served",
		},
		"served by a host of an unknown version only": {
			hosts:         []Host{newer, serving("ab", 0, "team-a")},
			wantErr:       "1 namespace not served, 1 unknown protocol version",
			wantNotServed: true,
		},
		"only hosts of unknown versions: nothing is known of namespaces": {
			hosts:   []Host{newer},
			wantErr: "0/1 hosts available: 1 unknown protocol version",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Pick(tc.hosts, Request{Namespace: "team-c"}, now)
			if tc.wantErr == "" {
				if err != nil || got.Name != tc.want {
					t.Fatalf("Pick = %q, %v; want %q", got.Name, err, tc.want)
				}
				return
			}
			var nh *NoHostError
			if !errors.As(err, &nh) {
				t.Fatalf("Pick = %q, %v; want a *NoHostError", got.Name, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q; want it to contain %q", err, tc.wantErr)
			}
			if nh.NotServed != tc.wantNotServed || (!tc.wantNotServed && strings.Contains(err.Error(), "host.actorNamespaces")) {
				t.Fatalf("NotServed %v (%q); want %v", nh.NotServed, err, tc.wantNotServed)
			}
		})
	}
}

// TestMatchesNamespace: a host that does not serve the actor's namespace
// does not match, so the manager neither restarts the actor there nor
// leaves it where a manager that predates the annotation put it.
func TestMatchesNamespace(t *testing.T) {
	h := live("h", 0)
	h.Namespaces = []string{"team-a"}
	if u := Matches(&h, Request{Namespace: "team-b"}); u != UnfitNamespace {
		t.Fatalf("Matches = %q for another namespace; want %q", u, UnfitNamespace)
	}
	if u := Matches(&h, Request{Namespace: "team-a"}); u != Fits {
		t.Fatalf("Matches = %q for its namespace; want it to fit", u)
	}
	h.Namespaces = nil
	if u := Matches(&h, Request{Namespace: "team-b"}); u != Fits {
		t.Fatalf("Matches = %q for a host of every namespace; want it to fit", u)
	}
}

// TestPickBalances assigns actors one at a time, as the controller does, and
// checks that hosts of equal capacity end within one of each other.
func TestPickBalances(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprintf("%d hosts", n), func(t *testing.T) {
			hosts := make([]Host, n)
			for i := range hosts {
				hosts[i] = live(fmt.Sprintf("h%d", i), 0)
				hosts[i].Capacity = 1000
			}
			for range 50 {
				h, err := Pick(hosts, Request{}, now)
				if err != nil {
					t.Fatal(err)
				}
				for i := range hosts {
					if hosts[i].Name == h.Name {
						hosts[i].Load++
					}
				}
			}
			lo, hi := hosts[0].Load, hosts[0].Load
			for _, h := range hosts {
				lo, hi = min(lo, h.Load), max(hi, h.Load)
			}
			if hi-lo > 1 {
				t.Fatalf("loads %v: spread %d, want <= 1", hosts, hi-lo)
			}
		})
	}
}

func TestLeaseExpiry(t *testing.T) {
	renew := metav1.NewMicroTime(now)
	acquire := metav1.NewMicroTime(now.Add(-time.Minute))
	tests := map[string]struct {
		spec coordinationv1.LeaseSpec
		want time.Time
	}{
		"renewTime plus duration": {
			spec: coordinationv1.LeaseSpec{RenewTime: &renew, AcquireTime: &acquire, LeaseDurationSeconds: ptr.To[int32](3)},
			want: now.Add(3 * time.Second),
		},
		"acquireTime when never renewed": {
			spec: coordinationv1.LeaseSpec{AcquireTime: &acquire, LeaseDurationSeconds: ptr.To[int32](3)},
			want: now.Add(-time.Minute + 3*time.Second),
		},
		"default duration": {
			spec: coordinationv1.LeaseSpec{RenewTime: &renew},
			want: now.Add(v1alpha1.DefaultLeaseDurationSeconds * time.Second),
		},
		"no times: never live": {
			spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To[int32](3)},
		},
		"zero duration: never live": {
			spec: coordinationv1.LeaseSpec{RenewTime: &renew, LeaseDurationSeconds: ptr.To[int32](0)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := LeaseExpiry(&coordinationv1.Lease{Spec: tc.spec})
			if !got.Equal(tc.want) {
				t.Fatalf("LeaseExpiry = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestHostFromLease(t *testing.T) {
	renew := metav1.NewMicroTime(now)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
	}
	tests := map[string]struct {
		annotations    map[string]string
		wantCap        int
		wantLabels     bool
		wantProtocol   string
		wantNamespaces []string // nil: every namespace
	}{
		"namespaces as declared": {
			annotations:    map[string]string{v1alpha1.NamespacesAnnotation: "team-a,team-b"},
			wantCap:        v1alpha1.DefaultHostCapacity,
			wantNamespaces: []string{"team-a", "team-b"},
		},
		"malformed namespaces: none": {
			annotations:    map[string]string{v1alpha1.NamespacesAnnotation: "team-a, team-b"},
			wantCap:        v1alpha1.DefaultHostCapacity,
			wantNamespaces: []string{},
		},
		"empty namespaces: none": {
			annotations:    map[string]string{v1alpha1.NamespacesAnnotation: ""},
			wantCap:        v1alpha1.DefaultHostCapacity,
			wantNamespaces: []string{},
		},
		"declared capacity and known node": {
			annotations: map[string]string{v1alpha1.NodeAnnotation: "n1", v1alpha1.CapacityAnnotation: "7"},
			wantCap:     7,
			wantLabels:  true,
		},
		"no capacity: default": {
			annotations: map[string]string{v1alpha1.NodeAnnotation: "n1"},
			wantCap:     v1alpha1.DefaultHostCapacity,
			wantLabels:  true,
		},
		"malformed capacity: default": {
			annotations: map[string]string{v1alpha1.CapacityAnnotation: "lots"},
			wantCap:     v1alpha1.DefaultHostCapacity,
		},
		"negative capacity: default": {
			annotations: map[string]string{v1alpha1.CapacityAnnotation: "-3"},
			wantCap:     v1alpha1.DefaultHostCapacity,
		},
		"zero capacity is kept": {
			annotations: map[string]string{v1alpha1.CapacityAnnotation: "0"},
			wantCap:     0,
		},
		"unknown node: no labels": {
			annotations: map[string]string{v1alpha1.NodeAnnotation: "elsewhere"},
			wantCap:     v1alpha1.DefaultHostCapacity,
		},
		"protocol version as declared": {
			annotations:  map[string]string{v1alpha1.ProtocolVersionAnnotation: "7"},
			wantCap:      v1alpha1.DefaultHostCapacity,
			wantProtocol: "7",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: "host-1", Annotations: tc.annotations},
				Spec:       coordinationv1.LeaseSpec{RenewTime: &renew, LeaseDurationSeconds: ptr.To[int32](2)},
			}
			h := HostFromLease(l, map[string]*corev1.Node{"n1": node}, map[string]int{"host-1": 4})
			if h.Name != "host-1" || h.Load != 4 || h.Capacity != tc.wantCap {
				t.Fatalf("host %+v; want name host-1, load 4, capacity %d", h, tc.wantCap)
			}
			if h.Protocol != tc.wantProtocol {
				t.Fatalf("protocol %q; want %q", h.Protocol, tc.wantProtocol)
			}
			if (h.Namespaces == nil) != (tc.wantNamespaces == nil) || !slices.Equal(h.Namespaces, tc.wantNamespaces) {
				t.Fatalf("namespaces %#v; want %#v", h.Namespaces, tc.wantNamespaces)
			}
			if got := h.NodeLabels["zone"] == "a" && len(h.Taints) == 1; got != tc.wantLabels {
				t.Fatalf("node labels/taints %v %v; want known node %v", h.NodeLabels, h.Taints, tc.wantLabels)
			}
			if !h.Live(now.Add(time.Second)) || h.Live(now.Add(2*time.Second)) {
				t.Fatalf("host live window wrong: expiry %v", h.Expiry)
			}
		})
	}
}

func TestProtocolVersion(t *testing.T) {
	current := strconv.Itoa(v1alpha1.ProtocolVersion)
	tests := map[string]struct {
		declared  string
		want      int
		wantKnown bool
	}{
		"no annotation: a host older than it, v1": {declared: "", want: v1alpha1.LegacyProtocolVersion, wantKnown: true},
		"the current version":                     {declared: current, want: v1alpha1.ProtocolVersion, wantKnown: true},
		"a newer version":                         {declared: strconv.Itoa(v1alpha1.ProtocolVersion + 1), want: v1alpha1.ProtocolVersion + 1},
		"older than the oldest known":             {declared: strconv.Itoa(v1alpha1.MinProtocolVersion - 1), want: max(v1alpha1.MinProtocolVersion-1, 0)},
		"a v prefix is no version":                {declared: "v" + current},
		"a space is no version":                   {declared: " " + current},
		"a negative number is no version":         {declared: "-1"},
		"a fraction is no version":                {declared: current + ".0"},
		"too large to parse":                      {declared: "99999999999999999999"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, known := ProtocolVersion(tc.declared)
			if got != tc.want || known != tc.wantKnown {
				t.Fatalf("ProtocolVersion(%q) = %d, %v; want %d, %v", tc.declared, got, known, tc.want, tc.wantKnown)
			}
		})
	}
}

func TestKnownProtocols(t *testing.T) {
	want := fmt.Sprintf("v%d to v%d", v1alpha1.MinProtocolVersion, v1alpha1.ProtocolVersion)
	if v1alpha1.MinProtocolVersion == v1alpha1.ProtocolVersion {
		want = fmt.Sprintf("v%d", v1alpha1.ProtocolVersion)
	}
	if got := KnownProtocols(); got != want {
		t.Fatalf("KnownProtocols() = %q; want %q", got, want)
	}
}

// TestMatchesProtocol: a host of an unknown version does not match, so an
// actor is neither restarted on it nor kept there after a spec change.
func TestMatchesProtocol(t *testing.T) {
	tests := map[string]struct {
		declared string
		want     Unfit
	}{
		"legacy":  {declared: "", want: Fits},
		"current": {declared: strconv.Itoa(v1alpha1.ProtocolVersion), want: Fits},
		"newer":   {declared: strconv.Itoa(v1alpha1.ProtocolVersion + 1), want: UnfitProtocol},
		"garbage": {declared: "two", want: UnfitProtocol},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := live("h", 0)
			h.Protocol = tc.declared
			if got := Matches(&h, Request{}); got != tc.want {
				t.Fatalf("Matches = %q; want %q", got, tc.want)
			}
		})
	}
}

const mib = 1 << 20

// withMemory is a live host of 100 actors' capacity whose Lease declares
// memory: capacity, used by actors covered, per actor, in MiB.
func withMemory(name string, load int, capacity, used uint64, covered int, perActor uint64) Host {
	h := live(name, load)
	h.Capacity = 100
	h.Memory = Memory{Capacity: capacity * mib, Used: used * mib, Actors: covered, PerActor: perActor * mib}
	return h
}

// TestPickMemory: a host whose Lease declares memory takes an actor only
// when the actor's expected memory is free, counting the actors assigned
// since the host last counted at its expected memory each; a host that
// declares none is limited by its count only.
func TestPickMemory(t *testing.T) {
	tests := map[string]struct {
		hosts      []Host
		refused    map[string]Unfit
		want       string
		wantErr    string
		wantReason string
	}{
		"a host that just refused the actor is unfit whatever its Lease says": {
			hosts:      []Host{withMemory("a", 10, 100, 40, 10, 4)},
			refused:    map[string]Unfit{"a": UnfitMemory},
			wantErr:    "0/1 hosts available: 1 insufficient memory (host a refused to start it)",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"another host takes what one refused": {
			hosts:   []Host{withMemory("a", 10, 100, 40, 10, 4), withMemory("b", 30, 100, 40, 30, 1)},
			refused: map[string]Unfit{"a": UnfitMemory},
			want:    "b",
		},
		"room for one more": {
			hosts: []Host{withMemory("a", 10, 100, 40, 10, 4)},
			want:  "a",
		},
		"exactly room for one more": {
			hosts: []Host{withMemory("a", 10, 100, 96, 10, 4)},
			want:  "a",
		},
		"no room": {
			hosts:      []Host{withMemory("a", 10, 100, 97, 10, 4)},
			wantErr:    "0/1 hosts available: 1 insufficient memory (host a has 3.0 MiB of memory free for actors, an actor takes 4.0 MiB there)",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"assignments the host has not counted yet take their share": {
			// 40 used by 10 actors, 15 more assigned since: 40+60 = 100.
			hosts:      []Host{withMemory("a", 25, 100, 40, 10, 4)},
			wantErr:    "1 insufficient memory (host a has 0 B of memory free",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"actors counted by the host but unassigned since do not make room": {
			// The host still holds their memory until it says otherwise.
			hosts:      []Host{withMemory("a", 5, 100, 98, 20, 4)},
			wantErr:    "insufficient memory",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"used past the capacity (the host lowered its budget)": {
			hosts:      []Host{withMemory("a", 1, 100, 150, 1, 4)},
			wantErr:    "insufficient memory",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"a host that declares no memory is limited by count only": {
			hosts: []Host{withMemory("short", 0, 100, 100, 0, 4), live("plain", 9)},
			want:  "plain",
		},
		"the one with memory is picked over the fuller ones": {
			hosts: []Host{withMemory("a", 1, 100, 99, 1, 4), withMemory("b", 50, 1000, 200, 50, 4)},
			want:  "b",
		},
		"all short of memory: the reason names memory": {
			hosts:      []Host{withMemory("a", 1, 10, 9, 1, 4), withMemory("b", 1, 10, 9, 1, 4)},
			wantErr:    "0/2 hosts available: 2 insufficient memory",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"dead and mismatched hosts do not hide that memory is what lacks": {
			hosts: func() []Host {
				dead := withMemory("dead", 0, 100, 0, 0, 4)
				dead.Expiry = now.Add(-time.Second)
				return []Host{dead, withMemory("a", 1, 10, 9, 1, 4)}
			}(),
			wantErr:    "0/2 hosts available: 1 insufficient memory, 1 lease expired",
			wantReason: v1alpha1.ReasonInsufficientMemory,
		},
		"one full, one short of memory: no single resource": {
			hosts:      []Host{withMemory("a", 100, 1000, 0, 100, 4), withMemory("b", 1, 10, 9, 1, 4)},
			wantErr:    "1 full, 1 insufficient memory",
			wantReason: v1alpha1.ReasonNoHost,
		},
		"only dead hosts: no host, whatever their memory": {
			hosts: func() []Host {
				dead := withMemory("dead", 0, 10, 9, 0, 4)
				dead.Expiry = now.Add(-time.Second)
				return []Host{dead}
			}(),
			wantErr:    "1 lease expired",
			wantReason: v1alpha1.ReasonNoHost,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Pick(tc.hosts, Request{Refused: tc.refused}, now)
			if tc.wantErr == "" {
				if err != nil || got.Name != tc.want {
					t.Fatalf("Pick = %q, %v; want %q", got.Name, err, tc.want)
				}
				return
			}
			var nh *NoHostError
			if !errors.As(err, &nh) {
				t.Fatalf("Pick = %q, %v; want a *NoHostError", got.Name, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantErr) {
				t.Fatalf("error %q; want it to contain %q", msg, tc.wantErr)
			}
			if r := nh.Reason(); r != tc.wantReason {
				t.Fatalf("reason %q, want %q", r, tc.wantReason)
			}
			if want := strings.Contains(tc.wantErr, "insufficient") || strings.Contains(tc.wantErr, "full"); nh.Waiting() != want {
				t.Fatalf("Waiting = %v: a host short of a resource may take the actor later, a dead one never", nh.Waiting())
			}
		})
	}
}

// TestNoHostWaiting: an actor no host would ever take (dead hosts,
// mismatched nodes) has nothing to wait for; the reason is NoHostAvailable.
func TestNoHostWaiting(t *testing.T) {
	dead := live("dead", 0)
	dead.Expiry = now.Add(-time.Second)
	_, err := Pick([]Host{dead}, Request{}, now)
	var nh *NoHostError
	if !errors.As(err, &nh) || nh.Waiting() || nh.Reason() != v1alpha1.ReasonNoHost {
		t.Fatalf("Pick on a dead host: %v", err)
	}
}

func TestMemoryFromLease(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		want        Memory
	}{
		"every figure": {
			annotations: map[string]string{
				v1alpha1.MemoryCapacityAnnotation: "1073741824", v1alpha1.MemoryUsedAnnotation: "104857600",
				v1alpha1.MemoryActorsAnnotation: "25", v1alpha1.MemoryPerActorAnnotation: "4194304",
			},
			want: Memory{Capacity: 1 << 30, Used: 100 * mib, Actors: 25, PerActor: 4 * mib},
		},
		"no capacity: no memory declared": {
			annotations: map[string]string{v1alpha1.MemoryUsedAnnotation: "5"},
		},
		"capacity that is no number: none declared": {
			annotations: map[string]string{v1alpha1.MemoryCapacityAnnotation: "1Gi", v1alpha1.MemoryUsedAnnotation: "5"},
		},
		"negative capacity: none declared": {
			annotations: map[string]string{v1alpha1.MemoryCapacityAnnotation: "-1"},
		},
		"capacity only: the rest is zero": {
			annotations: map[string]string{v1alpha1.MemoryCapacityAnnotation: "1000"},
			want:        Memory{Capacity: 1000},
		},
		"malformed figures beside a capacity count as zero": {
			annotations: map[string]string{v1alpha1.MemoryCapacityAnnotation: "1000", v1alpha1.MemoryUsedAnnotation: "lots", v1alpha1.MemoryActorsAnnotation: "99999999999999999999"},
			want:        Memory{Capacity: 1000},
		},
		"a huge actor count is bounded": {
			annotations: map[string]string{v1alpha1.MemoryCapacityAnnotation: "1000", v1alpha1.MemoryActorsAnnotation: "18446744073709551615"},
			want:        Memory{Capacity: 1000, Actors: math.MaxInt32},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := MemoryFromLease(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: tc.annotations}})
			if got != tc.want {
				t.Fatalf("MemoryFromLease = %+v, want %+v", got, tc.want)
			}
		})
	}
}
