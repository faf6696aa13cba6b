package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// TestAdmission runs the CRD in a real kube-apiserver: valid Actors are
// admitted with the documented defaults, invalid ones are rejected with a
// message naming the field, and the resource behaves as kubectl users
// expect (short name, category, printer columns, status subresource,
// kubectl wait, a field selector on the node).
func TestAdmission(t *testing.T) {
	env := envtestutil.Start(t)
	ns := env.Namespace(t)
	ctx := context.Background()

	t.Run("valid specs are admitted with the Go defaults", func(t *testing.T) {
		i := 0
		for name, spec := range validSpecs {
			i++
			objName := fmt.Sprintf("valid-%d", i)
			t.Run(name, func(t *testing.T) {
				doc := actorYAML(objName, spec)
				u := mustUnstructured(t, doc, ns)
				if err := env.Client.Create(ctx, u); err != nil {
					t.Fatalf("create rejected a valid spec:\n%s\n%v", doc, err)
				}
				var got v1alpha1.Actor
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: objName}, &got); err != nil {
					t.Fatal(err)
				}
				// What `troupe run` makes of the same document must be what
				// the API server stored: same decoding, same defaults.
				local, err := v1alpha1.ParseActor([]byte(doc))
				if err != nil {
					t.Fatal(err)
				}
				if !equality.Semantic.DeepEqual(got.Spec, local.Spec) {
					t.Errorf("server and ParseActor disagree:\nserver: %s\nlocal:  %s", mustJSON(t, got.Spec), mustJSON(t, local.Spec))
				}
			})
		}
	})

	t.Run("defaults", func(t *testing.T) {
		a := &v1alpha1.Actor{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "defaults"},
			Spec:       v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: "hello"}},
		}
		if err := env.Client.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		want := v1alpha1.ActorSpec{
			Component:     v1alpha1.ComponentSource{Image: "hello"},
			Handlers:      []v1alpha1.Handler{{Type: v1alpha1.HandlerRuntime}},
			RestartPolicy: v1alpha1.RestartOnFailure,
			RestorePolicy: v1alpha1.RestoreFromArchive,
			TickInterval:  &metav1.Duration{Duration: time.Second},
			Limits: v1alpha1.Limits{
				MaxMemoryPages: 1024,
				CallTimeout:    &metav1.Duration{Duration: 5 * time.Second},
				MaxLogBytes:    16384,
				MaxEventBytes:  1 << 20,
				MaxMetricNames: 100,

				MaxChainBytes:        1 << 30,
				ChainBytesPerSecond:  1 << 20,
				ChainBurstBytes:      16 << 20,
				ChainEventsPerSecond: 1000,
				ChainBurstEvents:     10000,

				MailboxMessages: 1024,
				MailboxBytes:    16 << 20,
				MaxMessageBytes: 1 << 20,
				RequestTimeout:  &metav1.Duration{Duration: 2 * time.Second},
			},
		}
		if !equality.Semantic.DeepEqual(a.Spec, want) {
			t.Errorf("defaulted spec:\n got %s\nwant %s", mustJSON(t, a.Spec), mustJSON(t, want))
		}
		if got := a.ManifestName(); got != "defaults" {
			t.Errorf("ManifestName = %q, want metadata.name", got)
		}
	})

	t.Run("invalid specs are rejected naming the field", func(t *testing.T) {
		i := 0
		for name, c := range invalidSpecs {
			i++
			objName := fmt.Sprintf("invalid-%d", i)
			t.Run(name, func(t *testing.T) {
				u := mustUnstructured(t, actorYAML(objName, c.spec), ns)
				err := env.Client.Create(ctx, u)
				if err == nil {
					t.Fatalf("admitted an invalid spec:\n%s", c.spec)
				}
				if !apierrors.IsInvalid(err) {
					t.Fatalf("want an Invalid error, got %v", err)
				}
				if !causeNames(err, c.field, c.msg) {
					t.Errorf("no cause on field %s with message %q in:\n%v", c.field, c.msg, err)
				}
			})
		}
	})

	t.Run("status subresource", func(t *testing.T) {
		a := &v1alpha1.Actor{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "status"},
			Spec:       v1alpha1.ActorSpec{Component: v1alpha1.ComponentSource{Image: "hello"}},
		}
		if err := env.Client.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		// Status written through the main resource is ignored...
		a.Status.Phase = v1alpha1.PhaseRunning
		if err := env.Client.Update(ctx, a); err != nil {
			t.Fatal(err)
		}
		if a.Status.Phase != "" {
			t.Errorf("status changed through the main resource: phase %q", a.Status.Phase)
		}
		// ...and taken through /status, which leaves the spec alone.
		head := strings.Repeat("ab", 32)
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		a.Spec.Suspend = true
		a.Status = v1alpha1.ActorStatus{
			ActorID:            "4f0c2a64-3c1e-4b53-9a39-1d2f3e4a5b6c",
			Phase:              v1alpha1.PhaseRunning,
			ObservedGeneration: a.Generation,
			NodeName:           "node-a",
			HostPod:            "troupe-system/troupe-host-abcde",
			Epoch:              3,
			Chain:              &v1alpha1.ChainStatus{Head: head, HeadShort: v1alpha1.ShortHead(head), Length: 42, UpdatedAt: &now},
			Restarts:           1,
			LastError:          "trap: unreachable",
			LastRestartTime:    &now,
			NextRestartTime:    &now,
			SuspendRequestTime: &now,
		}
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAssigned, ObservedGeneration: a.Generation,
		})
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonRunning, ObservedGeneration: a.Generation,
		})
		if err := env.Client.Status().Update(ctx, a); err != nil {
			t.Fatal(err)
		}
		var got v1alpha1.Actor
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Suspend {
			t.Error("a status update changed the spec")
		}
		if !equality.Semantic.DeepEqual(got.Status, a.Status) {
			t.Errorf("status round trip:\n got %s\nwant %s", mustJSON(t, got.Status), mustJSON(t, a.Status))
		}

		bad := got.DeepCopy()
		bad.Status.Phase = "Sleeping"
		if err := env.Client.Status().Update(ctx, bad); !apierrors.IsInvalid(err) || !causeNames(err, "status.phase", "Unsupported value") {
			t.Errorf("unknown phase: want Invalid on status.phase, got %v", err)
		}
		bad = got.DeepCopy()
		bad.Status.Conditions = append(bad.Status.Conditions, bad.Status.Conditions[0])
		if err := env.Client.Status().Update(ctx, bad); !apierrors.IsInvalid(err) || !causeNames(err, "status.conditions[2]", "Duplicate value") {
			t.Errorf("two Scheduled conditions: want Invalid, got %v", err)
		}
	})

	t.Run("field selector on status.nodeName", func(t *testing.T) {
		var list v1alpha1.ActorList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"status.nodeName": "node-a"}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range list.Items {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, []string{"status"}) {
			t.Errorf("actors on node-a: %v, want [status]", names)
		}
	})

	t.Run("discovery: short name and category", func(t *testing.T) {
		dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
		if err != nil {
			t.Fatal(err)
		}
		list, err := dc.ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, r := range list.APIResources {
			if r.Name != "actors" {
				continue
			}
			found = true
			if !r.Namespaced || r.Kind != "Actor" || !slices.Equal(r.ShortNames, []string{"act"}) || !slices.Equal(r.Categories, []string{"troupe"}) {
				t.Errorf("actors resource: %+v", r)
			}
		}
		if !found {
			t.Fatalf("no actors resource in %s", v1alpha1.GroupVersion)
		}
	})

	t.Run("printer columns", func(t *testing.T) {
		table := getTable(t, env.Config, "/apis/theater.troupe.dev/v1alpha1/namespaces/"+ns+"/actors", "status")
		// Priority 1 columns are the ones only -o wide shows.
		var cols []string
		for _, c := range table.ColumnDefinitions {
			cols = append(cols, fmt.Sprintf("%s/%d", c.Name, c.Priority))
		}
		if want := []string{"Name/0", "Phase/0", "Ready/0", "Node/0", "Head/0", "Length/0", "Age/0", "Host/1", "Epoch/1"}; !slices.Equal(cols, want) {
			t.Fatalf("columns (name/priority) %v, want %v", cols, want)
		}
		if len(table.Rows) != 1 {
			t.Fatalf("%d rows", len(table.Rows))
		}
		cells := table.Rows[0].Cells
		got := fmt.Sprint(append(cells[:6:6], cells[7:]...))
		if want := "[status Running True node-a abababababab 42 troupe-system/troupe-host-abcde 3]"; got != want {
			t.Errorf("row without its age %s, want %s", got, want)
		}
	})

	kubectl := filepath.Join(env.Assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Logf("no kubectl in %s: skipping the kubectl checks", env.Assets)
		return
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.Environment.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	t.Run("kubectl wait for Ready", func(t *testing.T) {
		run(t, "wait", "--for=condition=Ready", "--timeout=30s", "actor/status")
		run(t, "wait", "--for=jsonpath={.status.phase}=Running", "--timeout=30s", "act/status")
	})
	t.Run("kubectl get by category", func(t *testing.T) {
		out := run(t, "get", "troupe", "--field-selector", "metadata.name=status")
		if fields := strings.Fields(out); !slices.Equal(fields, []string{
			"NAME", "PHASE", "READY", "NODE", "HEAD", "LENGTH", "AGE",
			"status", "Running", "True", "node-a", "abababababab", "42", fields[len(fields)-1],
		}) {
			t.Errorf("kubectl get troupe:\n%s", out)
		}
	})
	t.Run("kubectl get -o wide shows the host pod and epoch", func(t *testing.T) {
		out := run(t, "get", "actors", "-o", "wide", "--field-selector", "metadata.name=status")
		fields := strings.Fields(out)
		if len(fields) != 18 || !slices.Equal(fields[:9], []string{"NAME", "PHASE", "READY", "NODE", "HEAD", "LENGTH", "AGE", "HOST", "EPOCH"}) ||
			!slices.Equal(append(fields[9:15:15], fields[16:]...), []string{"status", "Running", "True", "node-a", "abababababab", "42", "troupe-system/troupe-host-abcde", "3"}) {
			t.Errorf("kubectl get actors -o wide:\n%s", out)
		}
	})
	t.Run("kubectl explain", func(t *testing.T) {
		out := run(t, "explain", "actor.spec.limits.callTimeout")
		if !strings.Contains(out, "deadline of every call into the actor") {
			t.Errorf("kubectl explain:\n%s", out)
		}
		// The runtime handler's config keys, their ranges and the rule
		// that a key given there overrides spec.limits.
		out = run(t, "explain", "actor.spec.handlers.config")
		for _, k := range v1alpha1.RuntimeConfigKeys {
			if want := fmt.Sprintf("%s (%d..%d", k.Name, k.Min, k.Max); !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
				t.Errorf("kubectl explain actor.spec.handlers.config does not document %q:\n%s", want, out)
			}
		}
		if !strings.Contains(strings.Join(strings.Fields(out), " "), "A key given here overrides the matching spec.limits value") {
			t.Errorf("kubectl explain actor.spec.handlers.config does not say how config and limits combine:\n%s", out)
		}
		// The cross-namespace policy: who is accepted, and who is exempt.
		out = strings.Join(strings.Fields(run(t, "explain", "actor.spec.acceptMessagesFrom")), " ")
		for _, want := range []string{"Actors in its own namespace always may", "namespaceSelector", "NamespaceNotAllowed", "RBAC"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl explain actor.spec.acceptMessagesFrom does not say %q:\n%s", want, out)
			}
		}
	})
}

// causeNames reports whether an API error has a cause on field whose
// message contains msg.
func causeNames(err error, field, msg string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == field && strings.Contains(c.Message, msg) {
			return true
		}
	}
	return false
}

func mustUnstructured(t *testing.T, doc, ns string) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatalf("test YAML: %v\n%s", err, doc)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(ns)
	return u
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// getTable lists the object called name in the collection at path as
// kubectl does, asking the server for a Table built from the CRD's printer
// columns.
func getTable(t *testing.T, cfg *rest.Config, path, name string) *metav1.Table {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path += "?fieldSelector=metadata.name%3D" + name
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decoding the table: %v", err)
	}
	return &table
}
