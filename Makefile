# The phantom token filter. `make test` is what CI runs.
WASM := build/phantom_token.wasm

.PHONY: build test unit run clean

.DEFAULT_GOAL := build

include e2e/e2e.mk
include istio/istio.mk
include measure/measure.mk
include fuzz.mk

# staticcheck, pinned; run through `go run` so nothing is installed.
STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.8.2

build: $(WASM)

$(WASM): go.mod go.sum $(shell find filter internal -name '*.go' -not -name '*_test.go')
	@mkdir -p $(dir $@)
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o $@ ./filter

# Formatting, vet, staticcheck, then unit and filter tests, in Go and against
# the compiled module.
unit: build
	@out=$$(gofmt -l filter internal e2e istio measure third_party); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(STATICCHECK) ./...
	go test -count=1 ./...
	cd third_party/pretty && go vet ./... && go test -count=1 ./...
	cd measure && go vet ./... && $(STATICCHECK) ./... && go test -count=1 ./...
	node --test measure/v8prof/

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
