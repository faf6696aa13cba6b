package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
)

// TestProtocolOwnership enforces PROTOCOL.md#ownership: the manager and a
// real host, each writing under its own field manager, take an actor from
// Pending (no host) to Running, through a failure and the manager's
// restart, a suspend, a resume and a deletion. Every version of the Actor
// the watch saw, and the host's Lease, must show in managedFields only
// fields the document's tables give to their writer, shared fields with
// values the writer's row allows, and status written by no one else.
func TestProtocolOwnership(t *testing.T) {
	table := readOwnership(t)
	checkStatusCovered(t, table)

	s := newSuite(t)
	c := s.newCluster(t, clusterOptions{})
	g := c.g()
	const name = "proto"
	c.obs.track(name)
	idle := c.componentConfigMap("idle-wasm", testdata(t, "idle.wasm"), false)
	initerr := c.componentConfigMap("initerr-wasm", testdata(t, "initerr.wasm"), false)
	patch := func(spec string) {
		t.Helper()
		a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: name}}
		g.Expect(c.c.Patch(c.ctx(), a, client.RawPatch(types.MergePatchType, []byte(`{"spec":`+spec+`}`)))).To(Succeed())
	}
	component := func(src *v1alpha1.ComponentSource) string {
		b, err := json.Marshal(map[string]any{"component": src})
		g.Expect(err).NotTo(HaveOccurred())
		return string(b)
	}

	// Pending: no host yet.
	c.create(name, v1alpha1.ActorSpec{Component: *idle})
	c.waitReason(name, v1alpha1.ReasonNoHost, prompt)
	th := c.startHost("host")
	c.waitReady(name, slow)

	// Failed and restarted: a component whose init fails fails at once
	// (the host restarts it for the new spec itself); the manager backs
	// off and restarts it on a new epoch, which fails again.
	patch(component(initerr))
	g.Eventually(func() string {
		a := c.get(name)
		if a.Status.Restarts >= 1 && a.Status.Phase == v1alpha1.PhaseFailed {
			return ""
		}
		return describe(a)
	}).WithTimeout(slow).Should(BeEmpty(), "a failure, a restart on a new epoch and another failure")
	patch(component(idle))
	c.waitReady(name, slow)

	// Suspended, resumed, deleted.
	patch(`{"suspend":true}`)
	g.Eventually(func() v1alpha1.Phase { return c.get(name).Status.Phase }).WithTimeout(slow).Should(Equal(v1alpha1.PhaseSuspended))
	patch(`{"suspend":false}`)
	c.waitReady(name, slow)
	g.Expect(c.c.Delete(c.ctx(), c.get(name))).To(Succeed())
	g.Eventually(func() bool {
		var a v1alpha1.Actor
		return apierrors.IsNotFound(c.c.Get(c.ctx(), c.key(name), &a))
	}).WithTimeout(slow).Should(BeTrue(), "the Actor is released after its host reports it Stopped")

	// Every version the watch saw, from creation to deletion.
	versions := c.obs.history(name)
	g.Expect(len(versions)).To(BeNumerically(">", 10))
	seen := map[string]map[string]bool{v1alpha1.ManagerFieldOwner: {}, v1alpha1.HostFieldOwner: {}}
	for _, a := range versions {
		for _, p := range checkOwnership(t, table, "actor", a, a.ManagedFields) {
			seen[p.writer][p.path] = true
		}
	}
	// The check can't pass by finding nothing: each binary owned its own
	// fields, under its own name.
	for writer, paths := range map[string][]string{
		v1alpha1.ManagerFieldOwner: {"status.epoch", "status.hostPod", "status.phase", "status.restarts",
			"status.conditions[Scheduled].reason", "status.conditions[Ready].reason",
			"metadata.labels[" + v1alpha1.AssignedHostLabel + "]", "metadata.finalizers[" + v1alpha1.ChainFlushFinalizer + "]"},
		v1alpha1.HostFieldOwner: {"status.phase", "status.chain.head", "status.lastError", "status.conditions[Ready].reason"},
	} {
		for _, p := range paths {
			if !seen[writer][p] {
				t.Errorf("%s never owned %s in %d versions of the Actor", writer, p, len(versions))
			}
		}
	}

	var lease coordinationv1.Lease
	g.Expect(c.c.Get(c.ctx(), c.key(th.name), &lease)).To(Succeed())
	leasePaths := checkOwnership(t, table, "lease", &lease, lease.ManagedFields)
	if !slices.ContainsFunc(leasePaths, func(p ownedPath) bool {
		return p.path == "metadata.annotations["+v1alpha1.ProtocolVersionAnnotation+"]"
	}) {
		t.Errorf("the host's Lease has no protocol version written by the host: %v", leasePaths)
	}
	if lease.Annotations[v1alpha1.ProtocolVersionAnnotation] != fmt.Sprint(v1alpha1.ProtocolVersion) {
		t.Errorf("the host declares protocol %q, want %d", lease.Annotations[v1alpha1.ProtocolVersionAnnotation], v1alpha1.ProtocolVersion)
	}
}

// ownershipRow is one row of PROTOCOL.md's ownership tables: writer may
// own field (and everything inside it) of object; values, when set, are
// the values it may write there, or with anyBut the ones it may not.
type ownershipRow struct {
	object, field, writer string
	values                []string
	anyBut                bool
}

// readOwnership parses the tables of PROTOCOL.md's Ownership section:
// "### The Actor" and "### The host Lease", rows
// | `field` | manager or host | values | when |.
func readOwnership(t *testing.T) []ownershipRow {
	t.Helper()
	doc, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]string{"manager": v1alpha1.ManagerFieldOwner, "host": v1alpha1.HostFieldOwner}
	var rows []ownershipRow
	section, object := false, ""
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			section = line == "## Ownership"
			continue
		case !section:
			continue
		case line == "### The Actor":
			object = "actor"
		case line == "### The host Lease":
			object = "lease"
		case strings.HasPrefix(line, "### "):
			object = ""
		}
		if object == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("PROTOCOL.md: a row of %d cells, want 4: %s", len(cells), line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		r := ownershipRow{object: object, field: strings.Trim(cells[0], "`"), writer: writers[cells[1]]}
		if r.writer == "" {
			t.Fatalf("PROTOCOL.md: writer %q is neither manager nor host: %s", cells[1], line)
		}
		values := cells[2]
		if rest, ok := strings.CutPrefix(values, "any but "); ok {
			r.anyBut, values = true, rest
		}
		if values != "any" {
			for _, v := range strings.Split(values, ",") {
				r.values = append(r.values, strings.Trim(strings.TrimSpace(v), "`"))
			}
		}
		rows = append(rows, r)
	}
	if len(rows) < 20 {
		t.Fatalf("PROTOCOL.md: only %d ownership rows", len(rows))
	}
	return rows
}

// checkStatusCovered: every field of ActorStatus has a row, so a new field
// can't be written without saying who writes it.
func checkStatusCovered(t *testing.T, table []ownershipRow) {
	t.Helper()
	st := reflect.TypeOf(v1alpha1.ActorStatus{})
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		if !slices.ContainsFunc(table, func(r ownershipRow) bool { return r.object == "actor" && within(r.field, "status."+name) }) {
			t.Errorf("status.%s has no row in PROTOCOL.md#ownership", name)
		}
	}
	for _, cond := range []string{v1alpha1.ConditionScheduled, v1alpha1.ConditionReady, v1alpha1.ConditionStateLost, v1alpha1.ConditionArchived, v1alpha1.ConditionArchiveGap} {
		if !slices.ContainsFunc(table, func(r ownershipRow) bool { return r.field == "status.conditions["+cond+"]" }) {
			t.Errorf("condition %s has no row in PROTOCOL.md#ownership", cond)
		}
	}
}

// within reports whether path is inner or inside it.
func within(path, inner string) bool {
	return path == inner || strings.HasPrefix(path, inner+".") || strings.HasPrefix(path, inner+"[")
}

// ownedPath is a field a manager owns, as managedFields say.
type ownedPath struct {
	writer, path string
	// container: the entry is "." of a map, list or struct, its existence.
	container bool
}

// checkOwnership checks obj's managedFields against the table and returns
// the paths the two binaries own.
func checkOwnership(t *testing.T, table []ownershipRow, object string, obj any, entries []metav1.ManagedFieldsEntry) []ownedPath {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	rv := ""
	if m, ok := doc["metadata"].(map[string]any); ok {
		rv, _ = m["resourceVersion"].(string)
	}
	var owned []ownedPath
	for _, e := range entries {
		if e.Manager != v1alpha1.ManagerFieldOwner && e.Manager != v1alpha1.HostFieldOwner {
			// The test's own client writes spec and metadata; nobody but
			// the two binaries may write status.
			if e.Subresource == "status" {
				t.Errorf("%s at resourceVersion %s: %q wrote the status (fields %s)", object, rv, e.Manager, e.FieldsV1.GetRawString())
			}
			continue
		}
		paths, err := fieldPaths(e.Manager, e.FieldsV1)
		if err != nil {
			t.Fatalf("%s: managedFields of %s: %v", object, e.Manager, err)
		}
		for _, p := range paths {
			if !allowed(table, object, p) {
				t.Errorf("%s at resourceVersion %s: %s owns %s, which PROTOCOL.md#ownership does not give it", object, rv, p.writer, p.path)
			}
			for _, r := range table {
				if r.object != object || r.writer != p.writer || r.field != p.path || r.values == nil {
					continue
				}
				v := valueAt(doc, p.path)
				if slices.Contains(r.values, v) == r.anyBut {
					t.Errorf("%s at resourceVersion %s: %s wrote %s = %q; PROTOCOL.md allows it %s%v", object, rv, p.writer, p.path, v,
						map[bool]string{true: "anything but ", false: ""}[r.anyBut], r.values)
				}
			}
		}
		owned = append(owned, paths...)
	}
	return owned
}

// allowed reports whether a row gives p to its writer: p is the row's
// field or inside it; a container also when a row's field is inside it.
func allowed(table []ownershipRow, object string, p ownedPath) bool {
	return slices.ContainsFunc(table, func(r ownershipRow) bool {
		return r.object == object && r.writer == p.writer && (within(p.path, r.field) || (p.container && within(r.field, p.path)))
	})
}

// fieldPaths turns a FieldsV1 set into paths in PROTOCOL.md's notation:
// fields joined by ".", map keys (labels, annotations), list values
// (finalizers) and list-map keys (a condition's type) in brackets.
func fieldPaths(writer string, f *metav1.FieldsV1) ([]ownedPath, error) {
	if f == nil {
		return nil, nil
	}
	var set map[string]any
	if err := json.Unmarshal(f.GetRawBytes(), &set); err != nil {
		return nil, err
	}
	var out []ownedPath
	var walk func(prefix string, set map[string]any) error
	walk = func(prefix string, set map[string]any) error {
		for k, sub := range set {
			var path string
			switch {
			case k == ".":
				out = append(out, ownedPath{writer: writer, path: prefix, container: true})
				continue
			case strings.HasPrefix(k, "f:"):
				name := k[2:]
				if prefix == "metadata.labels" || prefix == "metadata.annotations" {
					path = prefix + "[" + name + "]"
				} else if prefix == "" {
					path = name
				} else {
					path = prefix + "." + name
				}
			case strings.HasPrefix(k, "k:"):
				var key map[string]any
				if err := json.Unmarshal([]byte(k[2:]), &key); err != nil {
					return fmt.Errorf("list-map key %s: %w", k, err)
				}
				id := fmt.Sprint(key["type"])
				if _, ok := key["type"]; !ok {
					id = fmt.Sprint(key)
				}
				path = prefix + "[" + id + "]"
			case strings.HasPrefix(k, "v:"):
				var v any
				if err := json.Unmarshal([]byte(k[2:]), &v); err != nil {
					return fmt.Errorf("list value %s: %w", k, err)
				}
				path = prefix + "[" + fmt.Sprint(v) + "]"
			default:
				path = prefix + "[" + k + "]"
			}
			m, _ := sub.(map[string]any)
			if len(m) == 0 {
				out = append(out, ownedPath{writer: writer, path: path})
				continue
			}
			if err := walk(path, m); err != nil {
				return err
			}
		}
		return nil
	}
	err := walk("", set)
	slices.SortFunc(out, func(a, b ownedPath) int { return strings.Compare(a.path, b.path) })
	return out, err
}

// valueAt reads path (PROTOCOL.md's notation) from an object decoded from
// JSON: [key] is a map key, or the element of a list of objects whose
// "type" is key. "" when there is nothing there.
func valueAt(doc map[string]any, path string) string {
	var cur any = doc
	for path != "" {
		var seg string
		bracket := strings.HasPrefix(path, "[")
		if bracket {
			end := strings.Index(path, "]")
			seg, path = path[1:end], path[end+1:]
		} else {
			path = strings.TrimPrefix(path, ".")
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			seg, path = path[:end], path[end:]
		}
		switch v := cur.(type) {
		case map[string]any:
			cur = v[seg]
		case []any:
			i := slices.IndexFunc(v, func(e any) bool { m, _ := e.(map[string]any); return m != nil && m["type"] == seg })
			if i < 0 {
				return ""
			}
			cur = v[i]
		default:
			return ""
		}
	}
	if cur == nil {
		return ""
	}
	return fmt.Sprint(cur)
}

// TestOwnershipNotation: the path notation the ownership check uses reads
// managedFields and objects as the API server writes them.
func TestOwnershipNotation(t *testing.T) {
	raw := `{"f:metadata":{"f:labels":{".":{},"f:theater.troupe.dev/assigned-host":{}},"f:finalizers":{".":{},"v:\"theater.troupe.dev/chain-flush\"":{}}},` +
		`"f:status":{".":{},"f:phase":{},"f:conditions":{".":{},"k:{\"type\":\"Ready\"}":{".":{},"f:reason":{}}},"f:chain":{"f:head":{}}}}`
	got, err := fieldPaths("w", metav1.NewFieldsV1(raw))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range got {
		if p.container {
			p.path += "(.)"
		}
		paths = append(paths, p.path)
	}
	want := []string{"metadata.finalizers(.)", "metadata.finalizers[theater.troupe.dev/chain-flush]",
		"metadata.labels(.)", "metadata.labels[theater.troupe.dev/assigned-host]", "status(.)", "status.chain.head",
		"status.conditions(.)", "status.conditions[Ready](.)", "status.conditions[Ready].reason", "status.phase"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths\n %q\nwant\n %q", paths, want)
	}

	a := &v1alpha1.Actor{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{v1alpha1.AssignedHostLabel: "h1"}}}
	a.Status.Phase = v1alpha1.PhaseRunning
	meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: "Assigned"})
	meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "BackOff"})
	b, _ := json.Marshal(a)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"status.phase":                                        "Running",
		"status.conditions[Ready].reason":                     "BackOff",
		"status.conditions[Ready].status":                     "False",
		"status.conditions[Missing].reason":                   "",
		"metadata.labels[" + v1alpha1.AssignedHostLabel + "]": "h1",
	} {
		if got := valueAt(doc, path); got != want {
			t.Errorf("valueAt(%s) = %q; want %q", path, got, want)
		}
	}
}
