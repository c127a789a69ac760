# Measurement: what the filter costs, apart from the product and its tests.
# Its own Go module in measure/ (it requires the root module for internal/
# and the e2e module for its harness and fixtures). Included from the root
# Makefile after e2e/e2e.mk, which provides ENVOY_PATH and e2e-envoy; the root
# Makefile provides `build` and WASM.
#
#   make bench        build the module, install Envoy, run the benchmark
#                     (measure/bench; BENCH_FLAGS passes flags, e.g. -quick for
#                     a two-minute run, or -phases side); BENCH_BASE=<git ref>
#                     also builds the filter at that ref and runs it beside
#                     the hit as listener hit-base (issue 19: the hit's cost
#                     against the earlier module's, in the same rounds)
#   make hostcount    the host calls and entries into the Go runtime of one
#                     cache hit, counted under wazero (measure/hostcount;
#                     HOSTCOUNT_FLAGS passes flags, e.g. -requests 5000)
#   make linkcost     what linking one package adds to a no-op Go wasip1
#                     module (measure/linkcost; builds 23 modules)
#   make sigcost      what checking one DPoP proof costs inside Envoy's V8:
#                     internal/dpop with Go's crypto in the module, with
#                     Envoy's verify_signature foreign function, and with the
#                     filter's in-module verifiers for PS* and EdDSA
#                     (measure/sigcost; SIGCOST_FLAGS passes flags, e.g.
#                     -n 1000)
#
# `make unit` runs gofmt, go vet, staticcheck and the tests of measure/.

MEASURE_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

MEASURE_WASM ?= $(abspath $(MEASURE_DIR)/../$(WASM))
BENCH_FLAGS ?=
BENCH_BASE ?=
HOSTCOUNT_FLAGS ?=
SIGCOST_FLAGS ?=

.PHONY: bench hostcount linkcost sigcost

# Passthrough, a no-op Go filter, the filter on a cache hit (also behind 50
# named routes, with and without 50 route rules; and with a new DPoP proof
# per request) and without cache, side by side in one Envoy (1 connection: p50, p99, Envoy CPU per request;
# 32 connections: req/s); the filter's profile in the VM (-tags debugstats,
# measure/hostcount); RSS of separate Envoys at 1, 2 and 8 workers; the
# module's size by package; a hot token whose answers have max-age=2 under 32
# connections for 20 s, with and without refresh_ahead (requests that waited
# for an introspection, p50/p99/max). Prints PASS/MISS per target. About 12
# minutes.
bench: build $(E2E_ENVOY_DEP)
	cd $(MEASURE_DIR) && ENVOY_PATH='$(ENVOY_PATH)' WASM_PATH='$(MEASURE_WASM)' \
		go run ./bench $(if $(BENCH_BASE),-base-ref '$(BENCH_BASE)') $(BENCH_FLAGS)

hostcount: build
	cd $(MEASURE_DIR) && go run ./hostcount -wasm '$(MEASURE_WASM)' $(HOSTCOUNT_FLAGS)

linkcost:
	cd $(MEASURE_DIR) && go run ./linkcost

sigcost: $(E2E_ENVOY_DEP)
	cd $(MEASURE_DIR) && ENVOY_PATH='$(ENVOY_PATH)' go run ./sigcost $(SIGCOST_FLAGS)
