// Package packaging checks what installs Troupe on a cluster (the Helm
// chart, the kustomize config, the samples, the Dockerfile and PROJECT)
// against the code and generated manifests they must agree with.
package packaging
