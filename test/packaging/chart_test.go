package packaging_test

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/troupe-dev/troupe/internal/testutil"
	"github.com/troupe-dev/troupe/test/dashboard"
)

// actorNamespaces are nonDefaultValues' host.actorNamespaces: the hosts
// may read ConfigMaps and Secrets there only.
var actorNamespaces = []string{"team-a", "team-b"}

// nonDefaultValues changes every value a user is likely to set.
const nonDefaultValues = `
fullnameOverride: acme
image:
  repository: registry.example.com/troupe
  tag: "1.2.3"
  pullPolicy: Always
imagePullSecrets:
- name: regcred
crds:
  keep: false
rbac:
  aggregateToDefaultRoles: false
manager:
  replicas: 2
  workers: 8
  logLevel: debug
  extraArgs: [--restart-backoff=5s]
  serviceAccount:
    name: acme-controller
host:
  actorNamespaces: [team-a, team-b]
  memoryReserve: 100Mi
  nodeSelector:
    troupe.dev/actors: "true"
  tolerations:
  - key: dedicated
    operator: Equal
    value: actors
    effect: NoSchedule
  dataHostPath: /srv/troupe
  capacity: 250
  disk:
    bytesPerSecond: 1048576
    burstEvents: 5000
    minFreeBytes: -1
    minFreePercent: 7.5
  leaseDuration: 5s
  maxConcurrentCompiles: 3
  compileTimeout: 90s
  statusWritesPerSecond: 2.5
  otlpEndpoint: http://otel-collector.observability:4318
  chainPort: 9092
  logLevel: debug
  logFormat: text
  extraArgs: [--status-interval=2s]
  serviceAccount:
    name: acme-actor-host
metrics:
  hostPort: 9090
  managerPort: 9080
  serviceMonitor:
    enabled: true
    labels:
      release: prometheus
probePort: 9081
`

// chartMeta reads charts/troupe/Chart.yaml.
func chartMeta(t *testing.T) (version, appVersion string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "charts", "troupe", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Version == "" || c.AppVersion == "" {
		t.Fatalf("Chart.yaml: version %q, appVersion %q", c.Version, c.AppVersion)
	}
	return c.Version, c.AppVersion
}

func TestHelmLint(t *testing.T) {
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(nonDefaultValues), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"default values":     nil,
		"non-default values": {"--values", f},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, helmEnv(t), tool(t, "helm"), append([]string{"lint", "--strict", "charts/troupe", "--kube-version", kubeVersion(t)}, args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

func TestChartDefaults(t *testing.T) {
	m := renderChart(t, "")
	_, appVersion := chartMeta(t)
	image := "troupe:" + appVersion // image.repository troupe, image.tag the appVersion

	d := deployment(t, m)
	mc := checkManager(t, d, image)
	if d.Name != "troupe-manager" || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment %s with %d replicas, want troupe-manager with 1", d.Name, *d.Spec.Replicas)
	}
	ds := daemonSet(t, m)
	hc := checkHost(t, ds, image, "/var/lib/troupe")
	if ds.Name != "troupe-host" {
		t.Errorf("DaemonSet %s, want troupe-host", ds.Name)
	}
	for _, c := range []*corev1.Container{mc, hc} {
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s pull policy %s, want IfNotPresent", c.Name, c.ImagePullPolicy)
		}
	}
	if a, b := d.Spec.Template.Spec.ServiceAccountName, ds.Spec.Template.Spec.ServiceAccountName; a == b {
		t.Errorf("the manager and the host share the ServiceAccount %s; the host needs its own", a)
	}
	if v, _ := flagValue(hc.Args, "http-bind-address"); v != "127.0.0.1:8082" {
		t.Errorf("chain endpoint on %q, want 127.0.0.1:8082 (docs/install.md and the e2e suite port-forward to 8082)", v)
	}
	if v, ok := flagValue(hc.Args, "otlp-endpoint"); ok {
		t.Errorf("tracing is on by default (--otlp-endpoint=%s); it must be off", v)
	}
	if sel := ds.Spec.Template.Spec.NodeSelector; !maps.Equal(sel, map[string]string{"kubernetes.io/os": "linux"}) || len(ds.Spec.Template.Spec.Tolerations) != 0 {
		t.Errorf("host nodeSelector %v and tolerations %v, want linux nodes and none", sel, ds.Spec.Template.Spec.Tolerations)
	}
	checkWiring(t, m, namespace)
	for _, name := range []string{"troupe-manager-metrics", "troupe-host-metrics"} {
		if m.get("Service", name) == nil {
			t.Errorf("no Service %s", name)
		}
	}
	if len(m.all("ServiceMonitor")) != 0 {
		t.Error("a ServiceMonitor by default; it needs prometheus-operator's CRDs")
	}
	for _, name := range []string{"troupe-actor-editor", "troupe-actor-viewer"} {
		if m.get("ClusterRole", name) == nil {
			t.Errorf("no aggregated ClusterRole %s", name)
		}
	}

	crd := m.one(t, "CustomResourceDefinition")
	if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD annotations %v: it is not kept on uninstall (crds.keep defaults to true)", crd.GetAnnotations())
	}
	checkCRDIsGenerated(t, crd)
}

// checkCRDIsGenerated compares crd with config/crd/bases: the chart's copy
// (charts/troupe/files/crds, refreshed by make manifests) must not drift.
func checkCRDIsGenerated(t *testing.T, crd *unstructured.Unstructured) {
	t.Helper()
	got := typed[apiextensionsv1.CustomResourceDefinition](t, crd)
	gen := decodeFile(t, "config/crd/bases/theater.troupe.dev_actors.yaml").one(t, "CustomResourceDefinition")
	want := typed[apiextensionsv1.CustomResourceDefinition](t, gen)
	if got.Name != want.Name || !reflect.DeepEqual(got.Spec, want.Spec) {
		t.Errorf("the chart's CRD differs from config/crd/bases/theater.troupe.dev_actors.yaml: run make manifests")
	}
}

func TestChartCRDFilesAreTheGeneratedOnes(t *testing.T) {
	root := testutil.RepoRoot(t)
	gen, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	chart, _ := filepath.Glob(filepath.Join(root, "charts", "troupe", "files", "crds", "*.yaml"))
	base := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if len(gen) == 0 || !slices.Equal(base(gen), base(chart)) {
		t.Fatalf("charts/troupe/files/crds has %v, config/crd/bases %v: run make manifests", base(chart), base(gen))
	}
	for _, p := range gen {
		a, _ := os.ReadFile(p)
		b, _ := os.ReadFile(filepath.Join(root, "charts", "troupe", "files", "crds", filepath.Base(p)))
		if string(a) != string(b) {
			t.Errorf("charts/troupe/files/crds/%s differs from config/crd/bases: run make manifests", filepath.Base(p))
		}
	}
}

func TestChartNonDefaultValues(t *testing.T) {
	m := renderChart(t, nonDefaultValues)
	image := "registry.example.com/troupe:1.2.3"

	d := deployment(t, m)
	mc := checkManager(t, d, image)
	ds := daemonSet(t, m)
	hc := checkHost(t, ds, image, "/srv/troupe")
	checkWiring(t, m, namespace, actorNamespaces...)
	for _, c := range []*corev1.Container{mc, hc} {
		if c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("%s pull policy %s, want Always", c.Name, c.ImagePullPolicy)
		}
	}
	for _, p := range []*corev1.PodSpec{&d.Spec.Template.Spec, &ds.Spec.Template.Spec} {
		if len(p.ImagePullSecrets) != 1 || p.ImagePullSecrets[0].Name != "regcred" {
			t.Errorf("imagePullSecrets %v, want regcred", p.ImagePullSecrets)
		}
	}
	if d.Name != "acme-manager" || ds.Name != "acme-host" || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment %s (%d replicas), DaemonSet %s; want acme-manager (2), acme-host", d.Name, *d.Spec.Replicas, ds.Name)
	}
	if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "acme-controller" {
		t.Errorf("manager ServiceAccount %s, want acme-controller", sa)
	}
	if sa := ds.Spec.Template.Spec.ServiceAccountName; sa != "acme-actor-host" {
		t.Errorf("host ServiceAccount %s, want acme-actor-host", sa)
	}
	pod := ds.Spec.Template.Spec
	// Helm merges maps with the defaults: linux nodes that carry the label
	// (a user drops the default with kubernetes.io/os: null).
	if !maps.Equal(pod.NodeSelector, map[string]string{"kubernetes.io/os": "linux", "troupe.dev/actors": "true"}) {
		t.Errorf("host nodeSelector %v", pod.NodeSelector)
	}
	want := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "actors", Effect: corev1.TaintEffectNoSchedule}}
	if !reflect.DeepEqual(pod.Tolerations, want) {
		t.Errorf("host tolerations %+v, want %+v", pod.Tolerations, want)
	}
	for flag, want := range map[string]string{
		"capacity": "250", "lease-duration": "5s", "http-bind-address": "127.0.0.1:9092", "log-level": "debug",
		"log-format": "text", "status-interval": "2s", "max-concurrent-compiles": "3", "compile-timeout": "90s", "status-writes-per-second": "2.5", "otlp-endpoint": "http://otel-collector.observability:4318", "metrics-bind-address": ":9090", "health-probe-bind-address": ":9081",
		// host.disk: the values set, and the defaults of the others, as integers (not 2.68435456e+08).
		"node-chain-bytes-per-second": "1048576", "node-chain-burst-bytes": "268435456", "node-chain-events-per-second": "100000",
		"node-chain-burst-events": "5000", "disk-min-free-bytes": "-1", "disk-min-free-percent": "7.5",
		"actor-namespaces": "team-a,team-b", "memory-reserve": "100Mi",
	} {
		if v, _ := flagValue(hc.Args, flag); v != want {
			t.Errorf("host --%s=%q, want %q", flag, v, want)
		}
	}
	for flag, want := range map[string]string{
		"workers": "8", "zap-log-level": "debug", "restart-backoff": "5s", "metrics-bind-address": ":9080", "health-probe-bind-address": ":9081",
	} {
		if v, _ := flagValue(mc.Args, flag); v != want {
			t.Errorf("manager --%s=%q, want %q", flag, v, want)
		}
	}

	crd := m.one(t, "CustomResourceDefinition")
	if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
		t.Error("crds.keep=false still keeps the CRD on uninstall")
	}
	if len(m.all("ClusterRole")) != 2 {
		t.Errorf("ClusterRoles %d, want only the manager's and the host's with rbac.aggregateToDefaultRoles=false", len(m.all("ClusterRole")))
	}
	sm := m.one(t, "ServiceMonitor")
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v, want release: prometheus", sm.GetLabels())
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	var scraped []string
	for _, svc := range m.all("Service") {
		if svc.GetNamespace() == namespace && labelsMatch(sel, svc.GetLabels()) {
			scraped = append(scraped, svc.GetName())
		}
	}
	slices.Sort(scraped)
	if !slices.Equal(scraped, []string{"acme-host-metrics", "acme-manager-metrics"}) || len(endpoints) != 1 {
		t.Errorf("ServiceMonitor scrapes %v through %v, want both metrics Services' port metrics", scraped, endpoints)
	}
	if p, _, _ := unstructured.NestedString(endpoints[0].(map[string]any), "port"); p != "metrics" {
		t.Errorf("ServiceMonitor scrapes port %q, want metrics", p)
	}
}

func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestChartOptions(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := map[string]struct {
		values string
		sets   []string
		check  func(t *testing.T, m manifest)
	}{
		"crds.install=false": {
			sets: []string{"crds.install=false"},
			check: func(t *testing.T, m manifest) {
				if n := len(m.all("CustomResourceDefinition")); n != 0 {
					t.Errorf("%d CRDs rendered", n)
				}
			},
		},
		"image.digest": {
			sets: []string{"image.digest=" + digest, "image.tag=ignored"},
			check: func(t *testing.T, m manifest) {
				checkManager(t, deployment(t, m), "troupe@"+digest)
				checkHost(t, daemonSet(t, m), "troupe@"+digest, "/var/lib/troupe")
			},
		},
		"metrics.grafanaDashboard": {
			sets: []string{"metrics.grafanaDashboard.enabled=true", "metrics.grafanaDashboard.namespace=monitoring",
				"metrics.grafanaDashboard.annotations.grafana_folder=Troupe"},
			check: func(t *testing.T, m manifest) {
				cm := m.getIn("ConfigMap", "monitoring", release+"-dashboard")
				if cm == nil {
					t.Fatal("no dashboard ConfigMap in namespace monitoring")
				}
				if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Troupe" {
					t.Errorf("labels %v, annotations %v: want the sidecar's label and the folder", cm.GetLabels(), cm.GetAnnotations())
				}
				file, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), dashboardFile))
				if err != nil {
					t.Fatal(err)
				}
				got, _, _ := unstructured.NestedString(cm.Object, "data", "troupe-overview.json")
				if got != strings.TrimRight(string(file), "\n") {
					t.Errorf("the ConfigMap's dashboard is not %s", dashboardFile)
				}
			},
		},
		"release name without troupe": {
			sets: []string{"nameOverride=actors"},
			check: func(t *testing.T, m manifest) {
				if d := deployment(t, m); d.Name != "troupe-actors-manager" {
					t.Errorf("Deployment %s, want troupe-actors-manager", d.Name)
				}
				checkWiring(t, m, namespace)
			},
		},
		"leader election off": {
			sets: []string{"manager.leaderElection.enabled=false"},
			check: func(t *testing.T, m manifest) {
				c := container(t, &deployment(t, m).Spec.Template.Spec, "manager")
				if v, _ := flagValue(c.Args, "leader-elect"); v != "false" {
					t.Errorf("manager args %q, want --leader-elect=false", c.Args)
				}
				if m.get("Role", "troupe-manager-leader-election") != nil {
					t.Error("the leader election Role is installed without leader election")
				}
				checkWiring(t, m, namespace)
			},
		},
		"archive off": {
			check: func(t *testing.T, m manifest) {
				for _, c := range []*corev1.Container{container(t, &deployment(t, m).Spec.Template.Spec, "manager"), container(t, &daemonSet(t, m).Spec.Template.Spec, "host")} {
					checkNoArchive(t, c)
				}
			},
		},
		"archive": {
			sets: archiveSets,
			check: func(t *testing.T, m manifest) {
				store := map[string]string{"archive-bucket": "troupe-archive", "archive-endpoint": "http://versitygw.storage:7070",
					"archive-prefix": "prod/eu", "archive-region": "eu-west-1", "archive-path-style": ""}
				host := container(t, &daemonSet(t, m).Spec.Template.Spec, "host")
				checkArchive(t, host, store, map[string]string{"archive-recovery-point": "5s", "archive-segment-bytes": "4Mi", "archive-local-tail": "-1",
					"archive-flush-timeout": "2m", "archive-uploads": "4", "archive-restore-retry": "5s"})
				mgr := container(t, &deployment(t, m).Spec.Template.Spec, "manager")
				checkArchive(t, mgr, store, map[string]string{"archive-retention": "24h", "archive-orphan-grace": "2h"})
				for _, c := range []*corev1.Container{host, mgr} {
					checkArchiveCredentials(t, c, "store-keys", map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN"})
				}
			},
		},
		"archive with the AWS chain": {
			sets: []string{"archive.enabled=true", "archive.bucket=troupe-archive", "archive.credentialsSecret.sessionTokenKey="},
			check: func(t *testing.T, m manifest) {
				host := container(t, &daemonSet(t, m).Spec.Template.Spec, "host")
				checkArchive(t, host, map[string]string{"archive-bucket": "troupe-archive"}, map[string]string{"archive-recovery-point": "10s", "archive-segment-bytes": "8Mi", "archive-local-tail": "64Mi",
					"archive-flush-timeout": "30s", "archive-uploads": "16", "archive-restore-retry": "30s"})
				for _, c := range []*corev1.Container{host, container(t, &deployment(t, m).Spec.Template.Spec, "manager")} {
					checkArchiveCredentials(t, c, "", nil)
				}
			},
		},
		"archive quantities as numbers": {
			values: "archive:\n  enabled: true\n  bucket: troupe-archive\n  segmentBytes: 16777216\n  localTail: 1073741824\n  uploads: 100\n  retention: 0\n",
			check: func(t *testing.T, m manifest) {
				checkArchive(t, container(t, &daemonSet(t, m).Spec.Template.Spec, "host"), map[string]string{"archive-bucket": "troupe-archive"},
					map[string]string{"archive-recovery-point": "10s", "archive-segment-bytes": "16777216", "archive-local-tail": "1073741824",
						"archive-flush-timeout": "30s", "archive-uploads": "100", "archive-restore-retry": "30s"})
				checkArchive(t, container(t, &deployment(t, m).Spec.Template.Spec, "manager"), map[string]string{"archive-bucket": "troupe-archive"},
					map[string]string{"archive-retention": "0s", "archive-orphan-grace": "1h"})
			},
		},
		"archive disabled keeps its settings out": {
			sets: []string{"archive.bucket=troupe-archive", "archive.credentialsSecret.name=store-keys"},
			check: func(t *testing.T, m manifest) {
				for _, c := range []*corev1.Container{container(t, &deployment(t, m).Spec.Template.Spec, "manager"), container(t, &daemonSet(t, m).Spec.Template.Spec, "host")} {
					checkNoArchive(t, c)
				}
			},
		},
		"no metrics services": {
			sets: []string{"metrics.service.enabled=false"},
			check: func(t *testing.T, m manifest) {
				if n := len(m.all("Service")); n != 0 {
					t.Errorf("%d Services", n)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.check(t, renderChart(t, tc.values, tc.sets...))
		})
	}
}

// TestChartRejectsBadValues: values.schema.json turns a misspelt or
// impossible value into an error rather than a broken install.
func TestChartRejectsBadValues(t *testing.T) {
	tests := map[string]struct {
		sets []string
		want string
	}{
		"misspelt key":               {[]string{"host.nodeselector.a=b"}, "nodeselector"},
		"pull policy":                {[]string{"image.pullPolicy=Sometimes"}, "pullPolicy"},
		"host log level":             {[]string{"host.logLevel=loud"}, "logLevel"},
		"lease duration units":       {[]string{"host.leaseDuration=15"}, "leaseDuration"},
		"port range":                 {[]string{"host.chainPort=70000"}, "chainPort"},
		"relative data path":         {[]string{"host.dataHostPath=var/lib/troupe"}, "dataHostPath"},
		"digest format":              {[]string{"image.digest=latest"}, "digest"},
		"monitor without services":   {[]string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}, "metrics.service.enabled"},
		"no service account name":    {[]string{"host.serviceAccount.create=false"}, "host.serviceAccount.name is required"},
		"zero workers":               {[]string{"manager.workers=0"}, "workers"},
		"status writes below -1":     {[]string{"host.statusWritesPerSecond=-2"}, "statusWritesPerSecond"},
		"status writes not a number": {[]string{"host.statusWritesPerSecond=fast"}, "statusWritesPerSecond"},
		"otlp endpoint not a URL":    {[]string{"host.otlpEndpoint=collector:4318"}, "otlpEndpoint"},
		"unknown manager log level":  {[]string{"manager.logLevel=verbose"}, "logLevel"},
		"actor namespace not a name": {[]string{"host.actorNamespaces={team-a,Team_B}"}, "actorNamespaces"},
		"actor namespace twice":      {[]string{"host.actorNamespaces={team-a,team-a}"}, "actorNamespaces"},
		"archive without a bucket":   {[]string{"archive.enabled=true"}, "bucket"},
		"archive bucket not a name":  {[]string{"archive.enabled=true", "archive.bucket=Troupe_Archive"}, "bucket"},
		"archive retention in days":  {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.retention=7d"}, "retention"},
		"archive endpoint with path": {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.endpoint=https://s3.example/troupe"}, "endpoint"},
		"archive segment not bytes":  {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.segmentBytes=big"}, "segmentBytes"},
		"archive no local tail":      {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.localTail=0"}, "localTail"},
		"archive zero segment":       {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.segmentBytes=0Mi"}, "segmentBytes"},
		"archive no uploads":         {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.uploads=0"}, "uploads"},
		"archive flush in seconds":   {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.flushTimeout=30"}, "flushTimeout"},
		"archive restore retry days": {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.restoreRetry=1d"}, "restoreRetry"},
		"archive misspelt key":       {[]string{"archive.pathstyle=true"}, "pathstyle"},
		"archive orphan grace days":  {[]string{"archive.enabled=true", "archive.bucket=troupe", "archive.orphanGrace=1d"}, "orphanGrace"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := renderChartErr(t, "", tc.sets...)
			if err == nil {
				t.Fatalf("helm template accepted %v:\n%.300s", tc.sets, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not name %q: %v", tc.want, err)
			}
		})
	}
}

// TestChartRBACIsTheGeneratedOne compares the rules of the chart's roles
// with config/rbac: the manager's and the host's roles are generated by
// controller-gen from +kubebuilder:rbac markers (make manifests), and a
// marker change must reach the chart.
func TestChartRBACIsTheGeneratedOne(t *testing.T) {
	chart := renderChart(t, "")
	type pair struct{ kind, chartName, file, configName string }
	pairs := map[string]pair{
		"manager, cluster-wide": {"ClusterRole", "troupe-manager", "config/rbac/role.yaml", "manager-role"},
		"manager, host leases":  {"Role", "troupe-manager", "config/rbac/role.yaml", "manager-role"},
		"manager, leader lease": {"Role", "troupe-manager-leader-election", "config/rbac/leader_election_role.yaml", "leader-election-role"},
		"host, cluster-wide":    {"ClusterRole", "troupe-host", "config/rbac/host/role.yaml", "troupe-host"},
		"host, its lease":       {"Role", "troupe-host", "config/rbac/host/role.yaml", "troupe-host"},
		"host, env everywhere":  {"ClusterRole", "troupe-host-env", "config/rbac/host-env/role.yaml", "troupe-host-env"},
		"people, edit Actors":   {"ClusterRole", "troupe-actor-editor", "config/rbac/actor_editor_role.yaml", "actor-editor-role"},
		"people, view Actors":   {"ClusterRole", "troupe-actor-viewer", "config/rbac/actor_viewer_role.yaml", "actor-viewer-role"},
	}
	covered := map[string]bool{}
	for name, p := range pairs {
		t.Run(name, func(t *testing.T) {
			got := chart.get(p.kind, p.chartName)
			if got == nil {
				t.Fatalf("the chart has no %s %s", p.kind, p.chartName)
			}
			want := decodeFile(t, p.file).get(p.kind, p.configName)
			if want == nil {
				t.Fatalf("%s has no %s %s", p.file, p.kind, p.configName)
			}
			if d := diffGrants(grants(rules(t, want)), grants(rules(t, got))); d != "" {
				t.Errorf("%s %s grants other rules than %s %s of %s: %s", p.kind, p.chartName, p.kind, p.configName, p.file, d)
			}
		})
		covered[p.kind+"/"+p.chartName] = true
		covered[p.file+":"+p.kind+"/"+p.configName] = true
	}
	// Every role on either side is in the table: a new generated role (or
	// a chart role with no generated counterpart) fails here.
	for _, o := range chart {
		if (o.GetKind() == "Role" || o.GetKind() == "ClusterRole") && !covered[o.GetKind()+"/"+o.GetName()] {
			t.Errorf("the chart's %s %s has no counterpart in config/rbac", o.GetKind(), o.GetName())
		}
	}
	files, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "config", "rbac", "*.yaml"))
	hostFiles, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "config", "rbac", "host", "*.yaml"))
	envFiles, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "config", "rbac", "host-env", "*.yaml"))
	if len(envFiles) == 0 {
		t.Error("no config/rbac/host-env (run make manifests)")
	}
	for _, f := range slices.Concat(files, hostFiles, envFiles) {
		rel, _ := filepath.Rel(testutil.RepoRoot(t), f)
		if filepath.Base(rel) == "kustomization.yaml" {
			continue
		}
		for _, o := range decodeFile(t, rel) {
			if (o.GetKind() == "Role" || o.GetKind() == "ClusterRole") && !covered[rel+":"+o.GetKind()+"/"+o.GetName()] {
				t.Errorf("%s %s of %s has no counterpart in the chart", o.GetKind(), o.GetName(), rel)
			}
		}
	}
}

// TestChartGrantsWhatConfigGrants compares, per workload, everything the
// chart's bindings let the manager and the host do with what config/default
// lets them do: the same roles bound to the same service accounts, in the
// same scopes.
func TestChartGrantsWhatConfigGrants(t *testing.T) {
	chart := workloadGrants(t, renderChart(t, ""))
	config := workloadGrants(t, kustomize(t, "config/default"))
	if !slices.Equal(slices.Sorted(maps.Keys(chart)), []string{"host", "manager"}) {
		t.Fatalf("the chart's workloads %v, want host and manager", slices.Sorted(maps.Keys(chart)))
	}
	for component, want := range config {
		if d := diffGrants(want, chart[component]); d != "" {
			t.Errorf("the chart's %s may do other things than config/default's: %s", component, d)
		}
	}
	if len(chart) != len(config) {
		t.Errorf("the chart has workloads %v, config/default %v", slices.Sorted(maps.Keys(chart)), slices.Sorted(maps.Keys(config)))
	}
}

// TestChartConfinesHosts: with host.actorNamespaces the hosts get the
// generated rules of config/rbac/host-env in a Role of each namespace, and
// no ConfigMap or Secret anywhere else; everything else they may do is what
// the default install lets them do; they are told the namespaces. Without
// it, they may read every ConfigMap and Secret, and are told nothing.
func TestChartConfinesHosts(t *testing.T) {
	generated := grants(rules(t, decodeFile(t, "config/rbac/host-env/role.yaml").one(t, "ClusterRole")))
	if len(generated) == 0 {
		t.Fatal("config/rbac/host-env/role.yaml grants nothing")
	}
	env := func(scope string) map[scopedGrant]bool {
		out := map[scopedGrant]bool{}
		for g := range generated {
			out[scopedGrant{scope, g}] = true
		}
		return out
	}
	open := renderChart(t, "")
	openGrants := workloadGrants(t, open)["host"]
	tests := map[string]struct {
		sets       []string
		namespaces []string
	}{
		"one namespace":            {sets: []string{"host.actorNamespaces={team-a}"}, namespaces: []string{"team-a"}},
		"two, and the release's":   {sets: []string{"host.actorNamespaces={team-b,troupe-system,team-a}"}, namespaces: []string{"team-b", "troupe-system", "team-a"}},
		"another release name too": {sets: []string{"host.actorNamespaces={team-a}", "fullnameOverride=acme"}, namespaces: []string{"team-a"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := renderChart(t, "", tc.sets...)
			checkWiring(t, m, namespace, tc.namespaces...)
			host := workloadGrants(t, m)["host"]
			for g := range host {
				if g.scope == "cluster" && (g.resource == "secrets" || g.resource == "configmaps") {
					t.Errorf("the confined host may still %s", g)
				}
			}
			// What the host may do is the default install's, with the
			// env rules moved from the cluster to each namespace.
			want := map[scopedGrant]bool{}
			for g := range openGrants {
				if !env("cluster")[g] {
					want[g] = true
				}
			}
			for _, ns := range tc.namespaces {
				scope := "namespace " + ns
				if ns == namespace {
					scope = "own namespace"
				}
				maps.Copy(want, env(scope))
			}
			if d := diffGrants(want, host); d != "" {
				t.Errorf("the confined host's rights: %s", d)
			}
			for _, ns := range tc.namespaces {
				roles := m.all("Role").in(ns)
				found := false
				for _, r := range roles {
					if strings.HasSuffix(r.GetName(), "-host-env") {
						found = true
						if d := diffGrants(generated, grants(rules(t, r))); d != "" {
							t.Errorf("Role %s/%s grants other rules than config/rbac/host-env/role.yaml: %s", ns, r.GetName(), d)
						}
					}
				}
				if !found {
					t.Errorf("no Role *-host-env in namespace %s", ns)
				}
			}
			c := container(t, &daemonSet(t, m).Spec.Template.Spec, "host")
			if v, _ := flagValue(c.Args, "actor-namespaces"); v != strings.Join(tc.namespaces, ",") {
				t.Errorf("host --actor-namespaces=%q, want %s", v, strings.Join(tc.namespaces, ","))
			}
		})
	}
	t.Run("empty: every namespace", func(t *testing.T) {
		for g := range env("cluster") {
			if !openGrants[g] {
				t.Errorf("without host.actorNamespaces the host may not %s", g)
			}
		}
		c := container(t, &daemonSet(t, open).Spec.Template.Spec, "host")
		if v, ok := flagValue(c.Args, "actor-namespaces"); ok {
			t.Errorf("host --actor-namespaces=%q without host.actorNamespaces", v)
		}
	})
}

// archiveSets turn the archive on with every value set.
var archiveSets = []string{"archive.enabled=true", "archive.endpoint=http://versitygw.storage:7070", "archive.bucket=troupe-archive",
	"archive.prefix=prod/eu", "archive.region=eu-west-1", "archive.pathStyle=true", "archive.credentialsSecret.name=store-keys",
	"archive.credentialsSecret.accessKeyIDKey=id", "archive.recoveryPoint=5s", "archive.segmentBytes=4Mi", "archive.localTail=-1",
	"archive.flushTimeout=2m", "archive.uploads=4", "archive.restoreRetry=5s", "archive.retention=24h", "archive.orphanGrace=2h"}

// checkArchive: c has exactly the archive flags in store and own (flag
// name to value, "" for a bool flag), no other.
func checkArchive(t *testing.T, c *corev1.Container, store, own map[string]string) {
	t.Helper()
	want := maps.Clone(store)
	maps.Copy(want, own)
	got := map[string]string{}
	for _, a := range c.Args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if strings.HasPrefix(name, "archive-") {
			got[name] = value
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s archive flags %v, want %v", c.Name, got, want)
	}
}

// checkArchiveCredentials: c reads the AWS variables from secret, each
// from the key keys names; no secret: none of them (the AWS chain), and
// never a credential in a flag or a literal value.
func checkArchiveCredentials(t *testing.T, c *corev1.Container, secret string, keys map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "AWS_") {
			continue
		}
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret {
			t.Errorf("%s env %s is not read from Secret %s: %+v", c.Name, e.Name, secret, e)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if optional := ref.Optional != nil && *ref.Optional; optional != (e.Name == "AWS_SESSION_TOKEN") {
			t.Errorf("%s env %s optional=%v: only the session token may be missing", c.Name, e.Name, optional)
		}
		got[e.Name] = ref.Key
	}
	if len(keys) == 0 {
		keys = map[string]string{}
	}
	if !maps.Equal(got, keys) {
		t.Errorf("%s credentials %v from Secret %q, want %v", c.Name, got, secret, keys)
	}
	for _, a := range c.Args {
		if strings.Contains(strings.ToLower(a), "secret") || strings.Contains(strings.ToLower(a), "access-key") {
			t.Errorf("%s has a credential flag %q", c.Name, a)
		}
	}
}

func checkNoArchive(t *testing.T, c *corev1.Container) {
	t.Helper()
	checkArchive(t, c, nil, nil)
	checkArchiveCredentials(t, c, "", nil)
}

// dashboardFile is the Grafana dashboard the chart ships.
const dashboardFile = "charts/troupe/dashboards/troupe-overview.json"

// TestGrafanaDashboardQueriesArePromQL: every query of the chart's
// dashboard parses as PromQL and reads only the hosts' metrics (the e2e
// suite checks each is in a real scrape of a host).
func TestGrafanaDashboardQueriesArePromQL(t *testing.T) {
	qs, err := dashboard.Load(filepath.Join(testutil.RepoRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 10 {
		t.Fatalf("%d queries: the dashboard lost its panels", len(qs))
	}
	for _, q := range qs {
		names, err := dashboard.Metrics(q)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "troupe_host_") && !strings.HasPrefix(n, "process_") {
				t.Errorf("%s reads %s, which is not a host's metric", q.Where, n)
			}
		}
	}
}
