package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/internal/version"
	"github.com/troupe-dev/troupe/internal/wasmcomponent"
)

// The media types of the artifact `troupe push` writes, those of the CNCF
// Wasm OCI artifact layout (tag-runtime's wasm-oci-artifact): the host
// takes any layer media type ending in +wasm (internal/component).
const (
	wasmLayerMediaType  types.MediaType = "application/vnd.wasm.content.layer.v1+wasm"
	wasmConfigMediaType types.MediaType = "application/vnd.wasm.config.v0+json"
)

func init() { subcommands = append(subcommands, newPushCommand) }

type pushOptions struct {
	insecure bool
}

func newPushCommand() *cobra.Command {
	o := &pushOptions{}
	cmd := &cobra.Command{
		Use:   "push [flags] MODULE REF",
		Short: "Push a module or component to an OCI registry as an artifact hosts pull",
		Long: `Push the WebAssembly module or component in the file MODULE (.wasm, or
gzipped .wasm.gz) to the registry reference REF (registry/repository[:tag];
the tag defaults to the first 12 hex digits of the module's SHA-256), as an
OCI artifact of one layer, media type ` + string(wasmLayerMediaType) + `,
with a config of media type ` + string(wasmConfigMediaType) + `.
It prints the pushed reference by digest, REPOSITORY@sha256:..., which an
Actor's spec.component.image should name.

Credentials come from your Docker config (~/.docker/config.json, as docker
login writes it). A registry on localhost, a loopback or a private
(RFC 1918) address is spoken to over plain HTTP; --insecure does so for any.`,
		Example: `  troupe push bin/examples/hello.wasm registry.example.com/actors/hello:v1
  troupe push js-hello.wasm 10.244.0.1:5000/actors/js-hello`,
		Args: twoArgs("MODULE", "REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readModuleFile(args[0])
			if err != nil {
				return err
			}
			ref, err := pushModule(cmd.Context(), data, args[1], o.insecure)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), ref.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&o.insecure, "insecure", false, "speak plain HTTP to the registry, whatever its address")
	return cmd
}

// pushModule pushes the module data (not gzipped) to refText as an
// artifact and returns its reference by digest.
func pushModule(ctx context.Context, data []byte, refText string, insecure bool) (name.Digest, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(refText, opts...)
	if err != nil {
		return name.Digest{}, usageError("REF %q is not an image reference: %w", refText, err)
	}
	if _, isDigest := ref.(name.Digest); isDigest {
		return name.Digest{}, usageError("REF %q names a digest: push to a tag (or to the repository alone)", refText)
	}
	tag := ref.(name.Tag)
	if tag.TagStr() == "latest" && !hasExplicitTag(refText) {
		tag = tag.Context().Tag(moduleDigest(data)[len("sha256:"):][:12])
	}
	img, err := moduleArtifact(data)
	if err != nil {
		return name.Digest{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("troupe/"+version.String())); err != nil {
		return name.Digest{}, &exitError{code: exitFailed, err: fmt.Errorf("pushing to %s: %w", tag, err)}
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("the artifact's digest: %w", err)
	}
	return tag.Context().Digest(d.String()), nil
}

// moduleArtifact is the OCI artifact of a module: one layer, and a config
// saying it is wasm, for WASI preview 1 (a core module) or 2 (a component).
func moduleArtifact(data []byte) (v1.Image, error) {
	osName := "wasip1"
	if wasmcomponent.IsComponent(data) {
		osName = "wasip2"
	}
	// No creation time: the same module is the same artifact, digest and
	// all, however often it is pushed.
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		Architecture: "wasm", OS: osName,
	})
	if err != nil {
		return nil, fmt.Errorf("the artifact's config: %w", err)
	}
	img = mutate.ConfigMediaType(img, wasmConfigMediaType)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(data, wasmLayerMediaType)})
	if err != nil {
		return nil, fmt.Errorf("the artifact's layer: %w", err)
	}
	return img, nil
}

// hasExplicitTag reports whether a reference text names a tag (a ':'
// after the last '/'), as opposed to go-containerregistry's default
// "latest".
func hasExplicitTag(ref string) bool {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return true
		case '/':
			return false
		}
	}
	return false
}
