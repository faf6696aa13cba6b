# syntax=docker/dockerfile:1
# Troupe's one image: the static binaries /manager (the Actor controller, the
# entrypoint), /host (the node's actor host), /gateway (the aggregated API
# that calls from outside come through) and /troupe (the CLI) on
# distroless/static, which has no shell and no package manager, running as
# the non-root user 65532. The Helm chart and config/ run /manager, /host
# and /gateway from it.
#
#   make docker-build IMG=troupe:0.1.0
#
# hack/image-local.sh builds the same binaries, with the same flags, into an
# image of the same layout without Docker; test/packaging checks that the two
# stay in step.

# The builder runs on the build machine's platform and cross-compiles (pure
# Go, CGO_ENABLED=0), so a multi-platform buildx build needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# Only the packages the four binaries are built from.
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
    -ldflags "-s -w -X github.com/troupe-dev/troupe/internal/version.Version=${VERSION}" \
    -o /out/ ./cmd/manager ./cmd/host ./cmd/gateway ./cmd/troupe

# distroless/static:nonroot brings what the binaries need besides
# themselves: CA certificates (OCI registries, https component URLs),
# /etc/passwd with the user nonroot (65532), and a /tmp.
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title=troupe \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=https://github.com/troupe-dev/troupe
COPY --from=builder /out/manager /out/host /out/gateway /out/troupe /
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/manager"]
