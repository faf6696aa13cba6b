package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
)

// Shell completion: cobra's `troupe completion bash|zsh|fish|powershell`
// writes the script; the functions here complete the values it asks for.
// An actor NAME comes from the running `troupe run` (its socket's
// /v1/info) or, in cluster mode, from the Actors of the namespace; -n
// from the cluster's namespaces. A completion that fails offers nothing
// rather than printing an error into the user's shell.

// completionTimeout bounds one completion's lookups: a shell waits on it.
const completionTimeout = 3 * time.Second

// completeActorName completes the first argument (NAME) of request, send
// and logs.
func completeActorName(socketFlag *string, cluster *clusterFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault // DATA: a message, @FILE or -
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		var names []string
		if cluster.on(cmd) {
			names = clusterNames(ctx, cluster, "actors")
		} else {
			names = localActorNames(ctx, *socketFlag)
		}
		return filterPrefix(names, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeNamespace completes -n with the cluster's namespaces.
func completeNamespace(cluster *clusterFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		return filterPrefix(clusterNames(ctx, cluster, "namespaces"), prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

func filterPrefix(names []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// localActorNames lists the actors of the troupe run on the socket.
func localActorNames(ctx context.Context, socketFlag string) []string {
	p, err := socketPath(socketFlag)
	if err != nil {
		return nil
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://troupe/v1/info", nil)
	if err != nil {
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var info struct {
		Actors []actorInfo `json:"actors"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&info) != nil {
		return nil
	}
	names := make([]string, 0, len(info.Actors))
	for _, a := range info.Actors {
		names = append(names, a.Name)
	}
	return names
}

// clusterNames lists the names of the Actors of the namespace cluster mode
// uses (what "actors"), or of the namespaces ("namespaces"), with the
// user's kubeconfig credentials.
func clusterNames(ctx context.Context, cluster *clusterFlags, what string) []string {
	cfg, ns, err := cluster.restConfig()
	if err != nil {
		return nil
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil
	}
	switch what {
	case "actors":
		base.Path = path.Join(base.Path, "/apis/theater.troupe.dev/v1alpha1/namespaces", ns, "actors")
	case "namespaces":
		base.Path = path.Join(base.Path, "/api/v1/namespaces")
	default:
		panic(fmt.Sprintf("clusterNames: %q", what))
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
	if err != nil {
		return nil
	}
	// The metadata alone: a list of Actors carries their manifests.
	req.Header.Set("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&list) != nil {
		return nil
	}
	names := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		names = append(names, it.Metadata.Name)
	}
	return names
}
