# The phantom token filter. `make test` is what CI runs.
WASM := build/phantom_token.wasm

# The module's memory allocation entry point is ours instead of the SDK's (see
# filter/sdkoverlay/alloc.go.overlay for why). The module is built against a
# copy of the pinned SDK, taken from the module cache into build/sdk with that
# one file replaced, through a go.mod of its own (build/wasm.mod, go.mod plus a
# replace); the repository's go.mod and the tests in Go mode use the SDK as is.
SDK_MODULE := github.com/proxy-wasm/proxy-wasm-go-sdk
SDK_FILE := proxywasm/internal/abi_callback_alloc.go
OVERLAY_SRC := filter/sdkoverlay/alloc.go.overlay
WASM_MOD := build/wasm.mod

.PHONY: build test unit run clean

.DEFAULT_GOAL := build

include e2e/e2e.mk
include istio/istio.mk
include measure/measure.mk
include fuzz.mk

# staticcheck, pinned; run through `go run` so nothing is installed.
STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.8.2

build: $(WASM)

$(WASM): go.mod go.sum $(shell find filter internal -name '*.go' -not -name '*_test.go') $(WASM_MOD)
	@mkdir -p $(dir $@)
	GOOS=wasip1 GOARCH=wasm go build -modfile=$(WASM_MOD) -buildmode=c-shared -trimpath -o $@ ./filter

$(WASM_MOD): go.mod go.sum $(OVERLAY_SRC)
	@mkdir -p $(dir $@)
	go mod download $(SDK_MODULE)
	dir=$$(go list -m -f '{{.Dir}}' $(SDK_MODULE)) && test -f "$$dir/$(SDK_FILE)" && \
	rm -rf build/sdk && cp -R "$$dir" build/sdk && chmod -R u+w build/sdk
	cp $(OVERLAY_SRC) build/sdk/$(SDK_FILE)
	cp go.mod $@ && cp go.sum $(WASM_MOD:.mod=.sum)
	go mod edit -modfile=$@ -replace=$(SDK_MODULE)=$(abspath build/sdk)

# Formatting, vet, staticcheck, then unit and filter tests, in Go and against
# the compiled module.
unit: build
	@out=$$(gofmt -l filter internal e2e istio measure third_party); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(STATICCHECK) ./...
	go test -count=1 ./...
	cd third_party/pretty && go vet ./... && go test -count=1 ./...
	cd measure && go vet ./... && $(STATICCHECK) ./... && go test -count=1 ./...

# Envoy with envoy.yaml and the module (127.0.0.1:8080, admin 9901), a local
# identity server (8443) and an echo API (8081); stops at once, naming the
# port, when one of them is in use. Envoy's log is also in build/run/envoy.log.
run: build $(E2E_ENVOY_DEP)
	cd e2e && ENVOY_PATH='$(ENVOY_PATH)' go run ./cmd/run -root ..

# The README's test command, and what CI runs: unit (gofmt, vet, staticcheck,
# Go and compiled-module tests), fuzz (each target briefly), e2e (real Envoy,
# oidc-provider, Keycloak; the quick-start test uses free ports, so it passes
# beside a running `make run`), istio-test and the one-minute soak.
test: unit fuzz e2e istio-test soak-ci

clean: e2e-clean
	rm -rf build
