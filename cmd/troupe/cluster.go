package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/textutil"
)

// Cluster mode: `troupe send|request` with --kubeconfig, --context or
// -n/--namespace, or run as the kubectl plugin `kubectl troupe`, post to
// the gateway's aggregated API through the API server, with the user's
// own kubeconfig credentials.
const (
	// gatewayAPIPath is the gateway's group and version under /apis.
	gatewayAPIPath = "/apis/gateway.troupe.dev/v1alpha1"
	// pluginName is the binary's name as a kubectl plugin.
	pluginName = "kubectl-troupe"
)

// Exit statuses of cluster mode, beside exitFailed (the actor's error, as
// in local mode), exitUsage and exitNoServer (the API server or the
// gateway cannot be reached, or the cluster serves no gateway).
const (
	// exitUnauthenticated: the API server or the gateway did not accept
	// the credentials (HTTP 401).
	exitUnauthenticated = 4
	// exitForbidden: RBAC denied the verb (HTTP 403): the user lacks
	// `send` or `request` on the actor.
	exitForbidden = 5
)

// asPlugin reports whether the binary runs as `kubectl troupe`: kubectl
// runs kubectl-troupe from the PATH (`ln -s troupe kubectl-troupe`).
func asPlugin() bool {
	base := filepath.Base(os.Args[0])
	return strings.TrimSuffix(base, ".exe") == pluginName
}

// clusterFlags are cluster mode's flags.
type clusterFlags struct {
	kubeconfig, context, namespace string
	// plugin: run as kubectl-troupe, cluster mode without flags.
	plugin bool
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "cluster mode: deliver through this kubeconfig's cluster (default $KUBECONFIG or ~/.kube/config when another cluster flag is given)")
	cmd.Flags().StringVar(&f.context, "context", "", "cluster mode: the kubeconfig context to use")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "cluster mode: the Actor's namespace (default: the context's)")
	_ = cmd.RegisterFlagCompletionFunc("namespace", completeNamespace(f))
}

// on reports whether cmd runs in cluster mode.
func (f *clusterFlags) on(cmd *cobra.Command) bool {
	if f.plugin {
		return true
	}
	for _, name := range []string{"kubeconfig", "context", "namespace"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// restConfig loads the kubeconfig as kubectl does, and the namespace:
// -n, else the context's, else "default".
func (f *clusterFlags) restConfig() (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", usageError("loading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", usageError("the namespace: %w", err)
	}
	cfg.UserAgent = "troupe-cli"
	return cfg, ns, nil
}

// clusterURL is the gateway's URL of op on namespace/name.
func clusterURL(cfg *rest.Config, ns, name, op string) (string, error) {
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return "", usageError("the kubeconfig's server: %w", err)
	}
	base.Path = path.Join(base.Path, gatewayAPIPath, "namespaces", ns, "actors", name, op)
	return base.String(), nil
}

// deliverCluster posts msg to namespace/name's op through the API server
// and returns the response's body; an error carries the exit status.
func deliverCluster(ctx context.Context, f *clusterFlags, op, name string, msg []byte) ([]byte, error) {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, usageError("NAME %q is not an Actor's name: %s", textutil.Truncate(name, 256), msgs[0])
	}
	cfg, ns, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return nil, usageError("namespace %q: %s", textutil.Truncate(ns, 256), msgs[0])
	}
	u, err := clusterURL(cfg, ns, name, op)
	if err != nil {
		return nil, err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, usageError("the kubeconfig's credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", op, ns, name, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json, */*")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &exitError{code: exitNoServer, err: fmt.Errorf("%s %s/%s: reaching the API server %s: %w", op, ns, name, cfg.Host, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limits.MaxMessageBytesLimit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: reading the response: %w", op, ns, name, err)
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	return nil, clusterError(op, ns+"/"+name, resp.StatusCode, body)
}

// apiStatus is the part of a Kubernetes Status the API server answers
// with, when it refuses the call before the gateway sees it.
type apiStatus struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// clusterError turns an error answer into the error local mode gives for
// the same reason (the gateway's message, exit 1), or, for what only a
// cluster answers, its own message and exit status.
func clusterError(op, target string, status int, body []byte) error {
	var e errorBody
	var st apiStatus
	_ = json.Unmarshal(body, &e)
	if e.Error == "" && json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		e.Error, e.Reason = st.Message, st.Reason
	}
	msg := e.Error
	if msg == "" {
		msg = fmt.Sprintf("the server answered %d: %s", status, textutil.Truncate(strings.TrimSpace(string(body)), 256))
	}
	switch {
	case status == http.StatusUnauthorized:
		return &exitError{code: exitUnauthenticated, err: fmt.Errorf(
			"%s %s: not authenticated: the cluster did not accept your kubeconfig's credentials (log in again, or check --context): %s", op, target, msg)}
	case status == http.StatusForbidden && e.Reason != "NamespaceNotAllowed":
		return &exitError{code: exitForbidden, err: fmt.Errorf(
			"%s %s: forbidden: you need the verb %q on actors.theater.troupe.dev in that namespace (see docs/messages.md): %s", op, target, op, msg)}
	case st.Kind == "Status" && (status == http.StatusNotFound || status == http.StatusServiceUnavailable):
		// The API server's own answer: no gateway is registered, or it
		// is not available; an actor that does not exist is the
		// gateway's NoSuchActor, which has its own body.
		return &exitError{code: exitNoServer, err: fmt.Errorf(
			"%s %s: the cluster serves no troupe gateway at %s (install the chart with gateway.enabled=true): %s", op, target, gatewayAPIPath, msg)}
	case e.Reason == "" && e.Error == "":
		return fmt.Errorf("%s %s: %s", op, target, msg)
	}
	// The gateway's message is the engine's: it names the actor and why.
	return errors.New(msg)
}
