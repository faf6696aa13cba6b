package packaging_test

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/troupe-dev/troupe/internal/envtestutil"
)

// TestChartHostRights installs the chart's service accounts, roles and
// bindings on a real API server, once with every namespace (the default)
// and once with host.actorNamespaces, and asks it (access reviews) what the
// host and the manager may do: the confined host reads ConfigMaps and
// Secrets in its namespaces and nowhere else, kube-system's least of all,
// while everything it needs for its Actors, anywhere, stays allowed; the
// manager never reads a Secret.
func TestChartHostRights(t *testing.T) {
	rbacKinds := map[string]bool{"ServiceAccount": true, "Role": true, "RoleBinding": true, "ClusterRole": true, "ClusterRoleBinding": true}
	type install struct {
		render          func(t *testing.T) manifest
		allowed, denied map[string]authorizationv1.ResourceAttributes
		// host and manager are the workloads' service accounts; gateway
		// the gateway's, when the install has one.
		host, manager, gateway string
	}
	installs := map[string]install{
		"every namespace": {
			render: func(t *testing.T) manifest { return renderChart(t, "", "fullnameOverride=open") },
			host:   "open-host", manager: "open-manager",
			allowed: map[string]authorizationv1.ResourceAttributes{
				"read kube-system's Secrets": {Namespace: "kube-system", Verb: "get", Resource: "secrets", Name: "bootstrap-token-abcdef"},
				"list the cluster's Secrets": {Verb: "list", Resource: "secrets"},
				"watch a Secret of any team": {Namespace: "team-c", Verb: "watch", Resource: "secrets", Name: "db"},
				"read a ConfigMap anywhere":  {Namespace: "team-c", Verb: "get", Resource: "configmaps"},
			},
		},
		"host.actorNamespaces": {
			render: func(t *testing.T) manifest {
				return renderChart(t, "", "fullnameOverride=confined", "host.actorNamespaces={team-a,team-b}")
			},
			host: "confined-host", manager: "confined-manager",
			allowed: map[string]authorizationv1.ResourceAttributes{
				"watch a Secret of team-a by name": {Namespace: "team-a", Verb: "watch", Resource: "secrets", Name: "db"},
				"list team-b's Secrets":            {Namespace: "team-b", Verb: "list", Resource: "secrets"},
				"read a ConfigMap of team-b":       {Namespace: "team-b", Verb: "get", Resource: "configmaps", Name: "hello-wasm"},
			},
			denied: map[string]authorizationv1.ResourceAttributes{
				"read kube-system's Secrets":    {Namespace: "kube-system", Verb: "get", Resource: "secrets", Name: "bootstrap-token-abcdef"},
				"list the cluster's Secrets":    {Verb: "list", Resource: "secrets"},
				"watch the cluster's Secrets":   {Verb: "watch", Resource: "secrets"},
				"read a Secret of another team": {Namespace: "team-c", Verb: "get", Resource: "secrets", Name: "db"},
				"read the release's Secrets":    {Namespace: namespace, Verb: "list", Resource: "secrets"},
				"list the cluster's ConfigMaps": {Verb: "list", Resource: "configmaps"},
				"read kube-system's ConfigMaps": {Namespace: "kube-system", Verb: "get", Resource: "configmaps", Name: "kubeadm-config"},
			},
		},
	}
	installs["gateway.enabled"] = install{
		render: func(t *testing.T) manifest {
			return renderChart(t, "", "fullnameOverride=gw", "gateway.enabled=true", "host.actorNamespaces={team-a,team-b}")
		},
		host: "gw-host", manager: "gw-manager", gateway: "gw-gateway",
		allowed: map[string]authorizationv1.ResourceAttributes{
			"read a ConfigMap of team-b": {Namespace: "team-b", Verb: "get", Resource: "configmaps", Name: "hello-wasm"},
		},
		denied: map[string]authorizationv1.ResourceAttributes{
			"read kube-system's Secrets": {Namespace: "kube-system", Verb: "get", Resource: "secrets", Name: "bootstrap-token-abcdef"},
		},
	}
	// kustomize's example of confined hosts, in namespace team-a instead of
	// its "actors".
	installs["config/confined"] = install{
		render: func(t *testing.T) manifest {
			m := kustomize(t, "config/confined")
			for _, o := range m {
				if o.GetNamespace() == "actors" {
					o.SetNamespace("team-a")
				}
			}
			return m
		},
		host: "troupe-host", manager: "troupe-controller-manager",
		allowed: map[string]authorizationv1.ResourceAttributes{
			"watch a Secret of team-a by name": {Namespace: "team-a", Verb: "watch", Resource: "secrets", Name: "db"},
			"read a ConfigMap of team-a":       {Namespace: "team-a", Verb: "get", Resource: "configmaps", Name: "hello-wasm"},
		},
		denied: map[string]authorizationv1.ResourceAttributes{
			"read kube-system's Secrets":    {Namespace: "kube-system", Verb: "get", Resource: "secrets", Name: "bootstrap-token-abcdef"},
			"list the cluster's Secrets":    {Verb: "list", Resource: "secrets"},
			"read a Secret of team-b":       {Namespace: "team-b", Verb: "get", Resource: "secrets", Name: "db"},
			"read the release's ConfigMaps": {Namespace: namespace, Verb: "list", Resource: "configmaps"},
		},
	}
	// What the host may and may not do whatever the install.
	always := map[string]authorizationv1.ResourceAttributes{
		"watch Actors anywhere":            {Verb: "watch", Group: "theater.troupe.dev", Resource: "actors"},
		"write an Actor's status anywhere": {Namespace: "team-c", Verb: "update", Group: "theater.troupe.dev", Resource: "actors", Subresource: "status"},
		"record an Event on an Actor":      {Namespace: "team-c", Verb: "create", Group: "events.k8s.io", Resource: "events"},
		"renew its Lease":                  {Namespace: namespace, Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: "h"},
		"watch namespaces (their labels)":  {Verb: "watch", Resource: "namespaces"},
	}
	never := map[string]authorizationv1.ResourceAttributes{
		"write a Secret of team-a":      {Namespace: "team-a", Verb: "update", Resource: "secrets", Name: "db"},
		"change an Actor's spec":        {Namespace: "team-a", Verb: "update", Group: "theater.troupe.dev", Resource: "actors"},
		"create a Pod":                  {Namespace: "team-a", Verb: "create", Resource: "pods"},
		"exec into a Pod":               {Namespace: "team-a", Verb: "create", Resource: "pods", Subresource: "exec"},
		"read a ServiceAccount token":   {Namespace: "team-a", Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
		"grant itself a Role":           {Namespace: "team-a", Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
		"touch another Lease namespace": {Namespace: "kube-system", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"},
		"label a namespace":             {Verb: "update", Resource: "namespaces", Name: "team-a"},
		// Reviewing access is the gateway's alone.
		"review access":  {Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
		"review a token": {Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
	}
	// The gateway reviews access, reads the front-proxy configuration and
	// routes (Actors, the hosts' Leases); it reads no Secret, writes no
	// Actor, and reviews no token (the API server authenticates callers).
	gatewayMay := map[string]authorizationv1.ResourceAttributes{
		"review access":                       {Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
		"read the front-proxy configuration":  {Namespace: "kube-system", Verb: "get", Resource: "configmaps", Name: "extension-apiserver-authentication"},
		"watch the front-proxy configuration": {Namespace: "kube-system", Verb: "watch", Resource: "configmaps", Name: "extension-apiserver-authentication"},
		"watch Actors":                        {Verb: "watch", Group: "theater.troupe.dev", Resource: "actors"},
		"list the hosts' Leases":              {Namespace: namespace, Verb: "list", Group: "coordination.k8s.io", Resource: "leases"},
	}
	gatewayMayNot := map[string]authorizationv1.ResourceAttributes{
		"read its peer CA's key":     {Namespace: namespace, Verb: "get", Resource: "secrets", Name: "gw-peer-ca"},
		"read kube-system's Secrets": {Namespace: "kube-system", Verb: "list", Resource: "secrets"},
		"change an Actor":            {Namespace: "team-a", Verb: "update", Group: "theater.troupe.dev", Resource: "actors"},
		"review a token":             {Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
		"renew a host's Lease":       {Namespace: namespace, Verb: "update", Group: "coordination.k8s.io", Resource: "leases"},
		"message an actor itself":    {Namespace: "team-a", Verb: "request", Group: "theater.troupe.dev", Resource: "actors"},
	}
	// Any authenticated caller reaches the gateway through the API server;
	// only a Role's request or send on the Actor lets it message one.
	callerMay := map[string]authorizationv1.ResourceAttributes{
		"reach the gateway (request)": {Namespace: "team-a", Verb: "create", Group: "gateway.troupe.dev", Resource: "actors", Subresource: "request", Name: "hello"},
		"reach the gateway (send)":    {Namespace: "team-a", Verb: "create", Group: "gateway.troupe.dev", Resource: "actors", Subresource: "send", Name: "hello"},
	}
	callerMayNot := map[string]authorizationv1.ResourceAttributes{
		"request an actor": {Namespace: "team-a", Verb: "request", Group: "theater.troupe.dev", Resource: "actors", Name: "hello"},
		"send to an actor": {Namespace: "team-a", Verb: "send", Group: "theater.troupe.dev", Resource: "actors", Name: "hello"},
	}
	manager := map[string]authorizationv1.ResourceAttributes{
		"read a Secret of team-a":    {Namespace: "team-a", Verb: "get", Resource: "secrets"},
		"read kube-system's Secrets": {Namespace: "kube-system", Verb: "list", Resource: "secrets"},
		"read a ConfigMap of team-a": {Namespace: "team-a", Verb: "get", Resource: "configmaps"},
	}

	rendered := map[string]manifest{}
	for name, in := range installs {
		rendered[name] = in.render(t)
	}
	env := envtestutil.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createNamespaces(ctx, t, env, namespace, "team-a", "team-b", "team-c")
	for name, in := range installs {
		t.Run(name, func(t *testing.T) {
			for _, o := range rendered[name] {
				if !rbacKinds[o.GetKind()] {
					continue
				}
				if err := env.Client.Create(ctx, o.DeepCopy()); err != nil {
					t.Fatalf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
			host := envtestutil.ServiceAccountUser(namespace, in.host)
			env.CheckAccess(t, host, in.denied, in.allowed)
			env.CheckAccess(t, host, never, always)
			env.CheckAccess(t, envtestutil.ServiceAccountUser(namespace, in.manager), manager, map[string]authorizationv1.ResourceAttributes{
				"label an Actor": {Namespace: "team-a", Verb: "patch", Group: "theater.troupe.dev", Resource: "actors"},
			})
			if in.gateway != "" {
				env.CheckAccess(t, envtestutil.ServiceAccountUser(namespace, in.gateway), gatewayMayNot, gatewayMay)
				env.CheckAccess(t, envtestutil.ServiceAccountUser("team-c", "some-app"), callerMayNot, callerMay)
			}
		})
	}
}
