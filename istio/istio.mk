# Istio delivery: the OCI image istio-agent pulls, and the tests that prove it
# with Istio's own code (its own Go module in istio/, so the filter's go.mod
# stays small). Included from the root Makefile after e2e/e2e.mk, which
# provides ENVOY_PATH and e2e-envoy; the root Makefile provides `build`.
#
#   make image                 build the module, pack it into the compat OCI image
#                              (one tar+gzip layer holding plugin.wasm, linux/amd64)
#                              as an OCI layout in build/image, print its manifest digest
#   make push IMAGE=registry.example.com/filters/phantom-token:1.0.0
#                              push build/image there (Docker config credentials;
#                              PUSH_FLAGS=-insecure for a plain-HTTP registry) and
#                              print the url and sha256 for the manifests
#   make istio-test            go vet and the tests of istio/: the image through
#                              Istio's fetcher and agent cache into Envoy, the
#                              manifests against Istio's CRDs and the filter's config,
#                              and the live gateway (TestLiveGateway)
#   make istio-live-test       the live gateway alone: Istio's discovery server and
#                              agent in-process deliver the image to our Envoy as an
#                              ingress gateway; each manifest applied from its file
#                              (docs/istio.md, "The live test"). istio-agent's Wasm
#                              cache is Istio's fixed /var/lib/istio/data: it must be
#                              writable.
#
# The first run downloads Istio's dependencies (about 170 modules, 770 MB) and
# compiles most of istiod and istio-agent for the live test (4 to 7.5 more
# minutes on 2 shared cores, 2.7 GB of Go build cache; docs/istio.md, "The live test").

ISTIO_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

ISTIO_WASM ?= $(abspath $(ISTIO_DIR)/../build/phantom_token.wasm)
IMAGE_LAYOUT ?= $(abspath $(ISTIO_DIR)/../build/image)
IMAGE ?=
PUSH_FLAGS ?=
ISTIO_GO_TEST_FLAGS ?=

.PHONY: image push istio-test istio-live-test

image: build
	cd $(ISTIO_DIR) && go run ./cmd/wasm-image -wasm '$(ISTIO_WASM)' -layout '$(IMAGE_LAYOUT)'

push: image
	@test -n '$(IMAGE)' || { echo 'usage: make push IMAGE=registry.example.com/filters/phantom-token:1.0.0' >&2; exit 2; }
	cd $(ISTIO_DIR) && go run ./cmd/wasm-image -layout '$(IMAGE_LAYOUT)' -push '$(IMAGE)' $(PUSH_FLAGS)

istio-test: build $(E2E_ENVOY_DEP)
	cd $(ISTIO_DIR) && go vet ./... && ENVOY_PATH='$(ENVOY_PATH)' WASM_PATH='$(ISTIO_WASM)' \
		go test -count=1 -timeout 15m $(ISTIO_GO_TEST_FLAGS) ./...

istio-live-test: build $(E2E_ENVOY_DEP)
	cd $(ISTIO_DIR) && ENVOY_PATH='$(ENVOY_PATH)' WASM_PATH='$(ISTIO_WASM)' \
		go test -count=1 -timeout 5m -run '^TestLiveGateway$$' -v $(ISTIO_GO_TEST_FLAGS) .
