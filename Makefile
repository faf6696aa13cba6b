# Troupe's one entry point for building and testing. `make help` lists targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/troupe-dev/troupe/internal/version.Version=$(VERSION)
BIN := bin
EXAMPLES := $(notdir $(patsubst %/,%,$(dir $(wildcard examples/*/main.go))))
GOTEST_FLAGS ?= -count=1
BENCH ?= .
BENCHTIME ?= 1s

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
lint: ## go vet and a gofmt check that fails on unformatted files.
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

.PHONY: wat
wat: ## Compile the hand-written *.wat test actors to the .wasm files beside them.
	hack/wat.sh

.PHONY: check-generated
check-generated: ## Fail when a committed generated file is stale.
	@if command -v wat2wasm >/dev/null; then hack/wat.sh --check; else echo "skipping the .wat drift check: no wat2wasm (apt-get install wabt)"; fi

.PHONY: test
test: lint check-generated ## Run every test (what CI runs).
	go test $(GOTEST_FLAGS) ./...

.PHONY: bench
bench: ## Run the Go benchmarks of the hot paths.
	go test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...

.PHONY: fuzz
fuzz: ## Fuzz every decoder of guest input for FUZZTIME each (default 30s).
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -d' ' -f2); do \
	    echo "== $$t $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$t; \
	  done; done
