package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/component"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// deployFieldOwner owns what `troupe deploy` applies, so a later deploy
// changes its own fields and leaves the rest of the manifest alone.
const deployFieldOwner = "troupe-cli"

// maxConfigMapModule is the largest gzipped module deploy puts in a
// ConfigMap: the API server refuses one whose keys and values come to
// more than 1 MiB.
const maxConfigMapModule = 1<<20 - len(configMapModuleKey)

// configMapModuleKey is the key of the module in deploy's ConfigMap.
const configMapModuleKey = "module.wasm.gz"

func init() { subcommands = append(subcommands, newDeployCommand) }

type deployOptions struct {
	cluster      clusterFlags
	image        string
	insecure     bool
	env          []string
	initialState string
	wait         time.Duration
}

func newDeployCommand() *cobra.Command {
	o := &deployOptions{}
	cmd := &cobra.Command{
		Use:   "deploy [flags] MODULE NAME",
		Short: "Ship a module to the cluster and run it as the Actor NAME, waiting until it is Ready",
		Long: `Deploy the WebAssembly module or component in the file MODULE (.wasm or
.wasm.gz) as the Actor NAME, in -n's namespace or else the kubeconfig
context's:

  1. with --image REPO[:TAG], push it there (as troupe push does) and name
     it by digest; without, put it gzipped in the ConfigMap NAME-module
     (up to 1 MiB gzipped, a ConfigMap's most: a larger module needs --image);
  2. apply the Actor (server-side, field manager troupe-cli) with its
     component pinned to the module's SHA-256, the runtime handler, and
     --env and --initial-state when given; what else its manifest says is
     left as it is;
  3. wait, up to --wait, for the Actor's Ready condition of this
     generation, and print where it runs.

Exit status: 0 once Ready; 1 when the push fails or the actor fails to
start (its condition's message on stderr) or is not Ready in time; 2 for a
usage error; 3 when the API server cannot be reached; 4 when it does not
accept your credentials; 5 when RBAC denies a step.`,
		Example: `  troupe deploy bin/examples/hello.wasm hello -n default --env GREETING=Hi
  troupe deploy js-hello.wasm js-hello --image 10.244.0.1:5000/actors/js-hello`,
		Args: twoArgs("MODULE", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0], args[1]) },
	}
	o.cluster.add(cmd)
	cmd.Flags().StringVar(&o.image, "image", "", "push the module to this registry repository (REPO[:TAG]) and run it from there, by digest")
	cmd.Flags().BoolVar(&o.insecure, "insecure", false, "with --image: speak plain HTTP to the registry, whatever its address")
	cmd.Flags().StringArrayVar(&o.env, "env", nil, "an environment variable of the actor, NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&o.initialState, "initial-state", "", "the actor's initial state (spec.initialState)")
	cmd.Flags().DurationVar(&o.wait, "wait", 5*time.Minute, "how long to wait for Ready; 0: do not wait")
	return cmd
}

func (o *deployOptions) run(cmd *cobra.Command, file, actorName string) error {
	if msgs := validation.IsDNS1123Subdomain(actorName); len(msgs) > 0 {
		return usageError("NAME %q is not an Actor's name: %s", actorName, msgs[0])
	}
	env, err := parseEnvFlags(o.env)
	if err != nil {
		return err
	}
	data, err := readModuleFile(file)
	if err != nil {
		return err
	}
	cfg, ns, err := o.cluster.restConfig()
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return &exitError{code: exitNoServer, err: fmt.Errorf("connecting to the API server %s: %w", cfg.Host, err)}
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	digest := moduleDigest(data)

	src := map[string]any{"sha256": strings.TrimPrefix(digest, "sha256:")}
	if o.image != "" {
		ref, err := pushModule(ctx, data, o.image, o.insecure)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s\n", ref)
		src["image"] = ref.String()
	} else {
		gz, err := gzipBytes(data)
		if err != nil {
			return err
		}
		if len(gz) > maxConfigMapModule {
			return usageError("%s is %d KiB gzipped: a ConfigMap holds at most 1 MiB; push it to a registry with --image REPO", file, len(gz)>>10)
		}
		cmName := actorName + "-module"
		if err := applyObject(ctx, c, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata":   map[string]any{"name": cmName, "namespace": ns, "labels": map[string]any{"app.kubernetes.io/managed-by": deployFieldOwner}},
			"binaryData": map[string]any{configMapModuleKey: gz},
		}); err != nil {
			return clientError("applying ConfigMap "+ns+"/"+cmName, err)
		}
		fmt.Fprintf(out, "configmap %s/%s: %d KiB gzipped\n", ns, cmName, (len(gz)+1023)>>10)
		src["configMap"] = map[string]any{"name": cmName, "key": configMapModuleKey}
	}
	spec := map[string]any{
		"component": src,
		"handlers":  []any{map[string]any{"type": "runtime", "config": map[string]any{}}},
	}
	if len(env) > 0 {
		spec["env"] = env
	}
	if o.initialState != "" {
		spec["initialState"] = o.initialState
	}
	if err := applyObject(ctx, c, map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Actor",
		"metadata": map[string]any{"name": actorName, "namespace": ns},
		"spec":     spec,
	}); err != nil {
		return clientError("applying Actor "+ns+"/"+actorName, err)
	}
	var a v1alpha1.Actor
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: actorName}, &a); err != nil {
		return clientError("reading Actor "+ns+"/"+actorName, err)
	}
	fmt.Fprintf(out, "actor %s/%s applied (generation %d, module %s)\n", ns, actorName, a.Generation, digest)
	if o.wait <= 0 {
		return nil
	}
	return waitReady(ctx, c, out, types.NamespacedName{Namespace: ns, Name: actorName}, a.Generation, o.wait)
}

// waitReady polls the Actor until its Ready condition is True for
// generation, or it failed, or timeout passed.
func waitReady(ctx context.Context, c client.Client, out io.Writer, key types.NamespacedName, generation int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := "no status yet"
	for {
		var a v1alpha1.Actor
		if err := c.Get(ctx, key, &a); err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return clientError("reading Actor "+key.String(), err)
		}
		if ready := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady); ready != nil && ready.ObservedGeneration >= generation {
			last = ready.Reason + ": " + ready.Message
			switch {
			case ready.Status == metav1.ConditionTrue:
				fmt.Fprintf(out, "actor %s Ready on %s (node %s)", key, a.Status.HostPod, a.Status.NodeName)
				if a.Status.Chain != nil {
					fmt.Fprintf(out, ", chain head %s", a.Status.Chain.HeadShort)
				}
				fmt.Fprintln(out)
				return nil
			case a.Status.Phase == v1alpha1.PhaseFailed:
				return &exitError{code: exitFailed, err: fmt.Errorf("actor %s failed: %s", key, last)}
			}
		}
		select {
		case <-ctx.Done():
			return &exitError{code: exitFailed, err: fmt.Errorf("actor %s is not Ready after %s: %s (kubectl describe actor -n %s %s)", key, timeout, last, key.Namespace, key.Name)}
		case <-tick.C:
		}
	}
}

// applyObject server-side applies obj as deploy's field manager.
func applyObject(ctx context.Context, c client.Client, obj map[string]any) error {
	if bd, ok := obj["binaryData"].(map[string]any); ok {
		// Unstructured content is JSON's: bytes travel as base64 strings.
		enc := map[string]any{}
		for k, v := range bd {
			enc[k] = v
			if b, ok := v.([]byte); ok {
				enc[k] = base64.StdEncoding.EncodeToString(b)
			}
		}
		obj["binaryData"] = enc
	}
	u := &unstructured.Unstructured{Object: obj}
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(deployFieldOwner), client.ForceOwnership)
}

// clientError gives an API error the CLI's exit status.
func clientError(what string, err error) error {
	switch {
	case apierrors.IsUnauthorized(err):
		return &exitError{code: exitUnauthenticated, err: fmt.Errorf("%s: not authenticated: %w", what, err)}
	case apierrors.IsForbidden(err):
		return &exitError{code: exitForbidden, err: fmt.Errorf("%s: forbidden: %w", what, err)}
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", what, err)}
	case meta.IsNoMatchError(err):
		return &exitError{code: exitNoServer, err: fmt.Errorf("%s: the cluster has no Actor CRD (install Troupe): %w", what, err)}
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", what, err)}
	}
	return &exitError{code: exitNoServer, err: fmt.Errorf("%s: %w", what, err)}
}

// parseEnvFlags turns --env NAME=VALUE into the manifest's env list.
func parseEnvFlags(flags []string) ([]any, error) {
	var env []any
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usageError("--env %q: want NAME=VALUE", f)
		}
		env = append(env, map[string]any{"name": k, "value": v})
	}
	return env, nil
}

// readModuleFile reads a module or component, gunzipping a .gz, and
// refuses what is not WebAssembly.
func readModuleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError("MODULE: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, component.DefaultMaxBytes+1))
	if err != nil {
		return nil, usageError("reading %s: %w", path, err)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, usageError("%s: %w", path, err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, component.DefaultMaxBytes+1)); err != nil {
			return nil, usageError("%s: gunzip: %w", path, err)
		}
	}
	if len(data) > component.DefaultMaxBytes {
		return nil, usageError("%s is over %d MiB, more than a host runs", path, component.DefaultMaxBytes>>20)
	}
	if !wasmcomponent.IsCoreModule(data) && !wasmcomponent.IsComponent(data) {
		return nil, usageError("%s is not a WebAssembly module or component", path)
	}
	return data, nil
}

func moduleDigest(data []byte) string { return component.Digest(data) }

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return b.Bytes(), nil
}
