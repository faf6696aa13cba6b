# Troupe's one entry point for building and testing. `make help` lists targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/troupe-dev/troupe/internal/version.Version=$(VERSION)
BIN := bin
EXAMPLES := $(notdir $(patsubst %/,%,$(dir $(wildcard examples/*/main.go))))
GOTEST_FLAGS ?= -count=1 -timeout 30m
BENCH ?= .
BENCHTIME ?= 1s
CONTROLLER_GEN ?= go tool controller-gen
# Packages whose kubebuilder markers generate the CRDs and deepcopy code, and
# the manager's RBAC role (from +kubebuilder:rbac markers on reconcilers).
API_PATHS := ./api/...
RBAC_PATHS := ./controllers/...
# The host pods' RBAC roles (config/rbac/host) come from markers in internal/host;
# what they read in the actors' namespaces (config/rbac/host-env: ConfigMaps and
# Secrets, granted per namespace or cluster-wide) from those in internal/kubeenv.
HOST_RBAC_PATHS := ./internal/host/...
HOST_ENV_RBAC_PATHS := ./internal/kubeenv/...
# $(call gen_crd,DIR) and $(call gen_rbac,DIR) write under DIR, so that
# check-generated can regenerate into a temporary directory and compare.
gen_crd = $(CONTROLLER_GEN) crd paths="$(API_PATHS)" output:crd:artifacts:config=$(1)/crd/bases
gen_rbac = $(CONTROLLER_GEN) rbac:roleName=manager-role paths="$(RBAC_PATHS)" output:rbac:artifacts:config=$(1)/rbac
gen_host_rbac = $(CONTROLLER_GEN) rbac:roleName=troupe-host paths="$(HOST_RBAC_PATHS)" output:rbac:artifacts:config=$(1)/rbac/host
gen_host_env_rbac = $(CONTROLLER_GEN) rbac:roleName=troupe-host-env paths="$(HOST_ENV_RBAC_PATHS)" output:rbac:artifacts:config=$(1)/rbac/host-env

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN{FS=":.*##"} /^[a-zA-Z0-9_-]+:.*##/{printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the troupe, host and manager binaries into bin/.
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: run
run: $(BIN)/examples/hello.wasm ## Build troupe and the hello actor and run it once: its logs, then the chain head.
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/troupe ./cmd/troupe
	$(BIN)/troupe run --once examples/hello/actor.yaml

.PHONY: examples
examples: $(addprefix $(BIN)/examples/,$(addsuffix .wasm,$(EXAMPLES))) ## Build the example actors (wasip1 reactors).

$(BIN)/examples/%.wasm: FORCE
	@mkdir -p $(BIN)/examples
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o $@ ./examples/$*

.PHONY: FORCE
FORCE:

.PHONY: lint
lint: ## go vet, gofmt, go.mod tidiness, staticcheck (incl. unused code) and errorlint (error wrapping); tools run through `go tool`.
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result" >&2; exit 1; }
	go tool staticcheck ./...
	@# fmt.Errorf with an error must wrap it (%w); wrapped errors are tested with errors.Is/As.
	go tool go-errorlint -errorf -comparison -asserts ./...

.PHONY: wat
wat: ## Compile the hand-written *.wat test actors to the .wasm files beside them.
	hack/wat.sh

.PHONY: manifests
manifests: ## Generate the CRDs (config/crd/bases, copied into charts/troupe) and the RBAC roles of the manager (config/rbac) and the host (config/rbac/host, config/rbac/host-env) from markers.
	$(call gen_crd,config)
	$(call gen_rbac,config)
	$(call gen_host_rbac,config)
	$(call gen_host_env_rbac,config)
	@# The chart installs the same CRDs (test/packaging checks the copy).
	rm -f charts/troupe/files/crds/*.yaml && cp config/crd/bases/*.yaml charts/troupe/files/crds/

.PHONY: generate
generate: ## Generate the API types' deepcopy methods (zz_generated.deepcopy.go).
	$(CONTROLLER_GEN) object paths="$(API_PATHS)"

.PHONY: envtest
envtest: ## Build (once; cached) kube-apiserver and etcd for envtest suites; prints the KUBEBUILDER_ASSETS export.
	@echo "export KUBEBUILDER_ASSETS=$$(hack/setup-envtest.sh)"

.PHONY: check-generated
check-generated: ## Fail when a committed generated file is stale.
	@if command -v wat2wasm >/dev/null; then hack/wat.sh --check; else echo "skipping the .wat drift check: no wat2wasm (apt-get install wabt)"; fi
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(call gen_crd,$$tmp); $(call gen_rbac,$$tmp); $(call gen_host_rbac,$$tmp); $(call gen_host_env_rbac,$$tmp); \
	$(CONTROLLER_GEN) object paths="$(API_PATHS)" output:object:dir="$$tmp/object"; \
	mkdir -p "$$tmp/crd/bases"; stale=0; \
	diff -ru config/crd/bases "$$tmp/crd/bases" || stale=1; \
	if [[ -e config/rbac/role.yaml || -e "$$tmp/rbac/role.yaml" ]]; then diff -u config/rbac/role.yaml "$$tmp/rbac/role.yaml" || stale=1; fi; \
	diff -u config/rbac/host/role.yaml "$$tmp/rbac/host/role.yaml" || stale=1; \
	diff -u config/rbac/host-env/role.yaml "$$tmp/rbac/host-env/role.yaml" || stale=1; \
	diff -u api/v1alpha1/zz_generated.deepcopy.go "$$tmp/object/zz_generated.deepcopy.go" || stale=1; \
	if [[ $$stale == 1 ]]; then echo "generated files are stale: run 'make manifests generate' and commit them" >&2; exit 1; fi

.PHONY: test
test: lint check-generated envtest test-tools s3-server ## Run every test (what CI runs), the components made by the real WIT toolchain and the archive's against a real S3 server included.
	@# The large components (the Go examples wrapped with the preview1
	@# adapter, the componentize-js actors) are built from the pinned
	@# toolchain and cached (hack/components.sh): the tests that run them
	@# must run, not skip. --check catches drift of the committed small ones.
	components=$${TROUPE_COMPONENTS:-$$(hack/components.sh)}; hack/components.sh --check; \
	assets=$${KUBEBUILDER_ASSETS:-$$(hack/setup-envtest.sh)}; vgw=$${TROUPE_VERSITYGW:-$$(hack/s3-server.sh)}; \
	TROUPE_COMPONENTS=$$components KUBEBUILDER_ASSETS=$$assets TROUPE_VERSITYGW=$$vgw go test $(GOTEST_FLAGS) ./...

.PHONY: components
components: ## Build (once; cached) the test components with the pinned WIT toolchain (node, npm); prints the TROUPE_COMPONENTS export.
	@echo "export TROUPE_COMPONENTS=$$(hack/components.sh)"

# The JavaScript example, built by componentize-js (hack/components.sh).
$(BIN)/examples/js-hello.wasm: FORCE
	@mkdir -p $(BIN)/examples
	cp "$$(hack/components.sh)/js-hello.wasm" $@

# The archive's tests (internal/archive, internal/s3test) run against a real
# S3 server, versitygw, built here (once; cached) before any test's timeout
# starts: a cold build takes minutes.
.PHONY: s3-server
s3-server: ## Build (once; cached) versitygw, the S3 server the archive tests run; prints the TROUPE_VERSITYGW export.
	@echo "export TROUPE_VERSITYGW=$$(hack/s3-server.sh)"

# Long loops (hundreds of kill -9s, races, ...) that CI does not run: every
# test reads TROUPE_TEST_LONG and, when it is set, runs its long version.
# LONG_RUN narrows the tests (go test -run), LONG_PKGS the packages.
LONG_RUN ?= .
LONG_PKGS ?= ./...
.PHONY: test-long
test-long: envtest s3-server ## Run the long versions of the crash, race and scale loops (TROUPE_TEST_LONG=1; not in CI). LONG_RUN and LONG_PKGS narrow it.
	components=$${TROUPE_COMPONENTS:-$$(hack/components.sh)}; vgw=$${TROUPE_VERSITYGW:-$$(hack/s3-server.sh)}; \
	assets=$${KUBEBUILDER_ASSETS:-$$(hack/setup-envtest.sh)}; TROUPE_TEST_LONG=1 KUBEBUILDER_ASSETS=$$assets TROUPE_COMPONENTS=$$components TROUPE_VERSITYGW=$$vgw \
	  go test -count=1 -timeout 3h -run '$(LONG_RUN)' $(LONG_PKGS)

# The tools the test suites run (helm and kubectl for test/packaging) are
# built here, before any test's timeout starts: a cold build of helm takes
# minutes, over ten on a loaded two-core machine.
.PHONY: test-tools
test-tools: ## Build (once; cached) helm and kubectl, which test/packaging runs.
	@hack/build-k8s.sh helm kubectl >/dev/null

.PHONY: bench
bench: ## Run the Go benchmarks of the hot paths.
	go test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...

.PHONY: fuzz
fuzz: ## Fuzz every decoder of guest input for FUZZTIME each (default 30s).
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -d' ' -f2); do \
	    echo "== $$t $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$t; \
	  done; done

# --- local cluster and e2e (hack/local-cluster.sh, docs/local-cluster.md) ---
# The image's tag is the build's version, never latest (latest makes the
# kubelet pull, and there is no registry to pull from).
IMAGE ?= $(shell VERSION='$(VERSION)' hack/image-local.sh --print-ref)
IMAGE_TAR := $(BIN)/troupe-image.tar

.PHONY: image-local
image-local: ## Build the image (manager, host, troupe; uid 65532) without Docker into bin/troupe-image.tar, tagged troupe:<version>.
	VERSION='$(VERSION)' IMAGE='$(IMAGE)' hack/image-local.sh -o $(IMAGE_TAR)

.PHONY: cluster-up
cluster-up: ## Start a local single-node Kubernetes cluster (root; builds its binaries once); prints the KUBECONFIG export.
	hack/local-cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and undo every host change it made (the binary cache stays).
	hack/local-cluster.sh down

.PHONY: test-e2e-local
test-e2e-local: ## Local cluster up, image (and v0.1.0's, for the upgrade test) built and imported, e2e suite run, cluster down (always); exits with the suite's status.
	VERSION='$(VERSION)' IMAGE='$(IMAGE)' IMAGE_TAR='$(IMAGE_TAR)' hack/e2e-local.sh

# TestScaleOneHost (test/e2e/scale_test.go, issue 15): TROUPE_E2E_SCALE Go
# hello actors on the local cluster's one host with the chart's default
# memory, all Ready and held Ready for TROUPE_E2E_SCALE_HOLD. Only that test
# runs (the suite's others would find its Actors), without the upgrade
# test's previous release.
TROUPE_E2E_SCALE ?= 1000
TROUPE_E2E_SCALE_HOLD ?= 3m
E2E_SCALE_FLAGS ?= -run TestScaleOneHost -v -timeout 60m

.PHONY: test-e2e-scale
test-e2e-scale: ## As test-e2e-local, but only TestScaleOneHost: TROUPE_E2E_SCALE (1000) hello actors Ready on one host with the chart's defaults, held TROUPE_E2E_SCALE_HOLD (3m).
	TROUPE_E2E_SCALE='$(TROUPE_E2E_SCALE)' TROUPE_E2E_SCALE_HOLD='$(TROUPE_E2E_SCALE_HOLD)' PREVIOUS=none E2E_FLAGS='$(E2E_SCALE_FLAGS)' \
	  VERSION='$(VERSION)' IMAGE='$(IMAGE)' IMAGE_TAR='$(IMAGE_TAR)' hack/e2e-local.sh

.PHONY: test-e2e
test-e2e: ## Run the e2e suite (docs/e2e.md) against the cluster KUBECONFIG names, with TROUPE_E2E_IMAGE already on its nodes.
	go test -tags e2e -count=1 -timeout 30m $(E2E_FLAGS) ./test/e2e/...

# --- packaging (Dockerfile, config/, charts/troupe; docs/install.md) ---
SAMPLES_OUT ?= config/samples/components

.PHONY: docker-build
docker-build: ## Build the image with Docker, tagged IMAGE (troupe:<version>): /manager, /host, /troupe on distroless, uid 65532.
	docker build --build-arg VERSION='$(VERSION)' -t '$(IMAGE)' .

# A ConfigMap holds at most 1 MiB and a Go actor is ~3 MiB: the samples are
# stripped and gzipped (~0.9 MiB); gzip -n keeps the output, and so the
# generated ConfigMaps' names, the same for the same build.
# The counter pair has no sample yet (messages between actors stay on one
# host for now): test/packaging's localOnly says the same.
SAMPLES := $(filter-out counter counter-client,$(EXAMPLES))
.PHONY: samples
samples: ## Build the example actors, gzipped, into config/samples/components for `kubectl apply --server-side -k config/samples`.
	@mkdir -p '$(SAMPLES_OUT)'
	for e in $(SAMPLES); do \
	  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o '$(SAMPLES_OUT)'/$$e.wasm ./examples/$$e; \
	  gzip -9 -n -f '$(SAMPLES_OUT)'/$$e.wasm; \
	done
