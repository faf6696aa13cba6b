package packaging_test

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// The checks below hold for every way of installing Troupe (the chart with
// any values, config/default): they are what the binaries and the issue
// require of the manager's and the host's pods.

// imageFiles are the image's files at its root (test/packaging checks the
// Dockerfile and hack/image-local.sh put exactly these there): no volume can
// be mounted at or below them (a mount at /host/proc fails with "not a
// directory", /host being the host binary).
var imageFiles = []string{"/gateway", "/host", "/manager", "/troupe"}

// checkMounts checks no mount of c lands on or below a file of the image.
func checkMounts(t *testing.T, c *corev1.Container) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		for _, f := range imageFiles {
			if m.MountPath == f || strings.HasPrefix(m.MountPath, f+"/") {
				t.Errorf("container %s mounts %s at %s, below the image's file %s: the container can't start", c.Name, m.Name, m.MountPath, f)
			}
		}
	}
}

// checkHardened checks a container runs with no privilege: no privilege
// escalation, every capability dropped, a read-only root filesystem, the
// runtime's default seccomp profile, none of the node's namespaces, and
// (nonRoot) a non-root user.
func checkHardened(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, nonRoot bool) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("container %s has no securityContext", c.Name)
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container %s: seccomp profile %v, want RuntimeDefault", c.Name, seccomp)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("container %s is privileged", c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container %s: capabilities %+v, want drop [ALL] and nothing added", c.Name, sc.Capabilities)
	}
	checkMounts(t, c)
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("pod shares the node's namespaces (hostNetwork %v, hostPID %v, hostIPC %v)", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	if nonRoot {
		runAsNonRoot, runAsUser := psc.RunAsNonRoot, psc.RunAsUser
		if sc.RunAsNonRoot != nil {
			runAsNonRoot = sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			runAsUser = sc.RunAsUser
		}
		if runAsNonRoot == nil || !*runAsNonRoot || (runAsUser != nil && *runAsUser == 0) {
			t.Errorf("container %s may run as root (runAsNonRoot %v, runAsUser %v)", c.Name, deref(runAsNonRoot), deref(runAsUser))
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// listenPort is the port of a --*-bind-address flag's value (":8081",
// "127.0.0.1:8082"), and its host.
func listenPort(t *testing.T, c *corev1.Container, flag string) (string, int32) {
	t.Helper()
	v, ok := flagValue(c.Args, flag)
	if !ok {
		t.Fatalf("container %s: no --%s in args %q", c.Name, flag, c.Args)
	}
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		t.Fatalf("container %s: --%s=%s: %v", c.Name, flag, v, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("container %s: --%s=%s: %v", c.Name, flag, v, err)
	}
	return host, int32(n)
}

// checkProbesAndPorts checks the liveness and readiness probes ask /healthz
// and /readyz where --health-probe-bind-address listens, the metrics port
// is where --metrics-bind-address listens, and resources are bounded.
func checkProbesAndPorts(t *testing.T, c *corev1.Container) {
	t.Helper()
	_, probePort := listenPort(t, c, "health-probe-bind-address")
	if p := port(t, c, "probes"); p != probePort {
		t.Errorf("container %s: port probes is %d, --health-probe-bind-address listens on %d", c.Name, p, probePort)
	}
	for name, tc := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		if tc.probe == nil || tc.probe.HTTPGet == nil {
			t.Errorf("container %s: no HTTP %s probe", c.Name, name)
			continue
		}
		g := tc.probe.HTTPGet
		if g.Path != tc.path || (g.Port.String() != "probes" && g.Port.IntValue() != int(probePort)) {
			t.Errorf("container %s: %s probe asks %s on port %s, want %s on %d", c.Name, name, g.Path, g.Port.String(), tc.path, probePort)
		}
	}
	if _, metricsPort := listenPort(t, c, "metrics-bind-address"); port(t, c, "metrics") != metricsPort {
		t.Errorf("container %s: port metrics is %d, --metrics-bind-address listens on %d", c.Name, port(t, c, "metrics"), metricsPort)
	}
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("container %s: resources %+v, want cpu and memory requests and a memory limit", c.Name, r)
	}
}

// fieldRefEnv returns the fieldPath of the downward-API variable name.
func fieldRefEnv(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	return ""
}

func literalEnv(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// mountedVolume returns the volume mounted at path and the mount.
func mountedVolume(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, path string) (*corev1.Volume, *corev1.VolumeMount) {
	t.Helper()
	for i, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for j, v := range pod.Volumes {
			if v.Name == m.Name {
				return &pod.Volumes[j], &c.VolumeMounts[i]
			}
		}
		t.Fatalf("container %s mounts volume %q, which the pod does not have", c.Name, m.Name)
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, path)
	return nil, nil
}

// checkManager checks the manager's Deployment and returns its container.
func checkManager(t *testing.T, d *appsv1.Deployment, image string) *corev1.Container {
	t.Helper()
	pod := &d.Spec.Template.Spec
	c := container(t, pod, "manager")
	if c.Image != image {
		t.Errorf("manager image %q, want %q", c.Image, image)
	}
	if !slices.Equal(c.Command, []string{"/manager"}) {
		t.Errorf("manager command %q, want [/manager]", c.Command)
	}
	if v, ok := flagValue(c.Args, "leader-elect"); !slices.Contains(c.Args, "--leader-elect") && (!ok || v != "true") {
		t.Errorf("manager args %q do not turn leader election on", c.Args)
	}
	if p := fieldRefEnv(c, "POD_NAMESPACE"); p != "metadata.namespace" {
		t.Errorf("manager POD_NAMESPACE from %q, want the downward API's metadata.namespace (the host namespace)", p)
	}
	checkHardened(t, pod, c, true)
	checkProbesAndPorts(t, c)
	return c
}

// checkHost checks the host's DaemonSet: the same hardening but root (to
// own its hostPath), its data directory a hostPath at dataHostPath, the
// node's /proc read-only at HOST_PROC, the downward API, the chain endpoint
// on loopback. It returns the host's container.
func checkHost(t *testing.T, ds *appsv1.DaemonSet, image, dataHostPath string) *corev1.Container {
	t.Helper()
	pod := &ds.Spec.Template.Spec
	c := container(t, pod, "host")
	if c.Image != image {
		t.Errorf("host image %q, want %q", c.Image, image)
	}
	if !slices.Equal(c.Command, []string{"/host"}) {
		t.Errorf("host command %q, want [/host]", c.Command)
	}
	for name, path := range map[string]string{"NODE_NAME": "spec.nodeName", "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid"} {
		if got := fieldRefEnv(c, name); got != path {
			t.Errorf("host %s from %q, want the downward API's %s", name, got, path)
		}
	}
	procDir, ok := literalEnv(c, "HOST_PROC")
	if !ok || procDir == "" {
		t.Fatalf("host has no HOST_PROC")
	}
	v, m := mountedVolume(t, pod, c, procDir)
	if v.HostPath == nil || v.HostPath.Path != "/proc" || !m.ReadOnly {
		t.Errorf("HOST_PROC=%s holds volume %+v (read-only %v), want the node's /proc, read-only", procDir, v.VolumeSource, m.ReadOnly)
	}
	dataDir, ok := flagValue(c.Args, "data-dir")
	if !ok {
		t.Fatalf("host args %q have no --data-dir", c.Args)
	}
	v, m = mountedVolume(t, pod, c, dataDir)
	if v.HostPath == nil || v.HostPath.Path != dataHostPath || m.ReadOnly ||
		v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("--data-dir=%s holds volume %+v (read-only %v), want the writable hostPath %s, DirectoryOrCreate", dataDir, v.VolumeSource, m.ReadOnly, dataHostPath)
	}
	if host, p := listenPort(t, c, "http-bind-address"); host != "127.0.0.1" || port(t, c, "chain") != p {
		t.Errorf("chain endpoint on %s:%d (port chain %d), want loopback only and a port named chain", host, p, port(t, c, "chain"))
	}
	checkHardened(t, pod, c, false)
	checkProbesAndPorts(t, c)
	return c
}

// checkWiring checks what refers to what: bindings to roles and service
// accounts, workloads to service accounts, Services to pods and ports, and
// every namespaced object in ns, but the Roles and RoleBindings that give
// the hosts their rights in actorNamespaces (the chart's
// host.actorNamespaces), which must be there.
func checkWiring(t *testing.T, m manifest, ns string, actorNamespaces ...string) {
	t.Helper()
	clusterScoped := map[string]bool{"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true, "APIService": true}
	for _, o := range m {
		rbac := o.GetKind() == "Role" || o.GetKind() == "RoleBinding"
		if !clusterScoped[o.GetKind()] && o.GetNamespace() != ns && !(rbac && slices.Contains(actorNamespaces, o.GetNamespace())) && !isAuthReaderBinding(o) {
			t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
		}
	}
	for _, actorNS := range actorNamespaces {
		if len(m.all("RoleBinding").in(actorNS)) == 0 {
			t.Errorf("no RoleBinding in the actor namespace %s", actorNS)
		}
	}
	sas := map[string]bool{}
	for _, o := range m.all("ServiceAccount") {
		sas[o.GetNamespace()+"/"+o.GetName()] = true
	}
	check := func(kind, name, bindingNS string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		roleNS := bindingNS
		if ref.Kind == "ClusterRole" {
			roleNS = ""
		}
		if r := m.getIn(ref.Kind, roleNS, ref.Name); r == nil && !(bindingNS == "kube-system" && ref.Kind == "Role" && ref.Name == authReaderRole) {
			t.Errorf("%s %s refers to %s %s, which is not installed (in namespace %q)", kind, name, ref.Kind, ref.Name, bindingNS)
		}
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && !sas[s.Namespace+"/"+s.Name] {
				t.Errorf("%s %s binds ServiceAccount %s/%s, which is not installed", kind, name, s.Namespace, s.Name)
			}
		}
	}
	for _, o := range m.all("ClusterRoleBinding") {
		b := typed[rbacv1.ClusterRoleBinding](t, o)
		check(o.GetKind(), b.Name, "", b.RoleRef, b.Subjects)
	}
	for _, o := range m.all("RoleBinding") {
		b := typed[rbacv1.RoleBinding](t, o)
		check(o.GetKind(), b.Name, b.Namespace, b.RoleRef, b.Subjects)
	}
	pods := map[string]*corev1.PodTemplateSpec{}
	for _, o := range m.all("Deployment") {
		pods["Deployment "+o.GetName()] = &typed[appsv1.Deployment](t, o).Spec.Template
	}
	for _, o := range m.all("DaemonSet") {
		pods["DaemonSet "+o.GetName()] = &typed[appsv1.DaemonSet](t, o).Spec.Template
	}
	for name, p := range pods {
		if sa := p.Spec.ServiceAccountName; !sas[ns+"/"+sa] {
			t.Errorf("%s runs as ServiceAccount %q, which is not installed", name, sa)
		}
	}
	for _, o := range m.all("Service") {
		svc := typed[corev1.Service](t, o)
		var selected []string
		for name, p := range pods {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels)) {
				selected = append(selected, name)
				for _, sp := range svc.Spec.Ports {
					if sp.TargetPort.String() != "" && sp.TargetPort.IntValue() == 0 {
						found := false
						for _, c := range p.Spec.Containers {
							for _, cp := range c.Ports {
								found = found || cp.Name == sp.TargetPort.String()
							}
						}
						if !found {
							t.Errorf("Service %s targets port %q, which %s does not name", svc.Name, sp.TargetPort.String(), name)
						}
					}
				}
			}
		}
		if len(selected) != 1 {
			t.Errorf("Service %s selects %v, want exactly one workload", svc.Name, selected)
		}
	}
}

// scopedGrant is a permission and where it holds: "cluster", "own
// namespace" (the workload's), or another namespace.
type scopedGrant struct {
	scope string
	grant
}

func (g scopedGrant) String() string { return g.scope + ": " + g.grant.String() }

// workloadGrants is what each workload (by its component label) may do:
// the rules of every role bound to its ServiceAccount, resolved through
// the bindings of m. Comparing two installs' workloadGrants compares what
// they let the manager and the host do, whatever the objects are named.
func workloadGrants(t *testing.T, m manifest) map[string]map[scopedGrant]bool {
	t.Helper()
	type workload struct{ ns, sa string }
	byComponent := map[string]workload{}
	add := func(ns string, p *corev1.PodTemplateSpec) {
		c := p.Labels["app.kubernetes.io/component"]
		if c == "" {
			t.Fatalf("a workload's pods in %s have no app.kubernetes.io/component label", ns)
		}
		byComponent[c] = workload{ns, p.Spec.ServiceAccountName}
	}
	for _, o := range m.all("Deployment") {
		add(o.GetNamespace(), &typed[appsv1.Deployment](t, o).Spec.Template)
	}
	for _, o := range m.all("DaemonSet") {
		add(o.GetNamespace(), &typed[appsv1.DaemonSet](t, o).Spec.Template)
	}
	out := map[string]map[scopedGrant]bool{}
	for component, w := range byComponent {
		set := map[scopedGrant]bool{}
		bound := func(subjects []rbacv1.Subject) bool {
			return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
				return s.Kind == "ServiceAccount" && s.Name == w.sa && s.Namespace == w.ns
			})
		}
		collect := func(scope string, ref rbacv1.RoleRef, roleNS string) {
			if ref.Kind == "ClusterRole" {
				roleNS = "" // a RoleBinding may grant a ClusterRole's rules in its namespace
			}
			r := m.getIn(ref.Kind, roleNS, ref.Name)
			if r == nil {
				return // checkWiring reports it
			}
			for g := range grants(rules(t, r)) {
				set[scopedGrant{scope, g}] = true
			}
		}
		for _, o := range m.all("ClusterRoleBinding") {
			if b := typed[rbacv1.ClusterRoleBinding](t, o); bound(b.Subjects) {
				collect("cluster", b.RoleRef, "")
			}
		}
		for _, o := range m.all("RoleBinding") {
			if b := typed[rbacv1.RoleBinding](t, o); bound(b.Subjects) {
				scope := "own namespace"
				if b.Namespace != w.ns {
					scope = fmt.Sprintf("namespace %s", b.Namespace)
				}
				collect(scope, b.RoleRef, b.Namespace)
			}
		}
		out[component] = set
	}
	return out
}

// authReaderRole is the Role every API server has in kube-system that lets
// an aggregated API server read the front-proxy configuration: the gateway
// is bound to it there.
const authReaderRole = "extension-apiserver-authentication-reader"

// isAuthReaderBinding reports whether o is a RoleBinding to authReaderRole
// in kube-system, the one object an install may put outside its namespace.
func isAuthReaderBinding(o *unstructured.Unstructured) bool {
	if o.GetKind() != "RoleBinding" || o.GetNamespace() != "kube-system" {
		return false
	}
	name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
	kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
	return kind == "Role" && name == authReaderRole
}
