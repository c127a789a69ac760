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
#   make v8prof       where a cache hit's time goes inside the module, by V8's
#                     own CPU profiler: the filter and the SDK no-op under
#                     Node.js with a JavaScript proxy-wasm host
#                     (measure/v8prof; V8PROF_FLAGS passes flags to hit.mjs,
#                     e.g. --n 200000 --interval 100; needs node ≥ 20)
#
# `make unit` runs gofmt, go vet, staticcheck and the tests of measure/ (the
# Go ones and measure/v8prof's node tests).

MEASURE_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

MEASURE_WASM ?= $(abspath $(MEASURE_DIR)/../$(WASM))
BENCH_FLAGS ?=
BENCH_BASE ?=
HOSTCOUNT_FLAGS ?=
SIGCOST_FLAGS ?=
V8PROF_FLAGS ?= --n 1000000 --interval 50
V8PROF_OUT := $(abspath $(MEASURE_DIR)/../build/v8prof)

.PHONY: bench hostcount linkcost sigcost v8prof

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

# The node tests of measure/v8prof, then a million cache hits through the
# filter and a million requests through the SDK no-op (built as the bench
# builds it), each under V8's CPU profiler after 20,000 not profiled, and the
# report of both profiles (build/v8prof/*.cpuprofile, which Chrome DevTools
# also opens). About 20 seconds.
v8prof: build
	@command -v node >/dev/null || { echo "make v8prof needs Node.js (20 or later) on PATH"; exit 1; }
	@mkdir -p '$(V8PROF_OUT)'
	cd $(MEASURE_DIR)/v8prof && node --disable-warning=ExperimentalWarning --test v8prof.test.mjs
	cd $(MEASURE_DIR) && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o '$(V8PROF_OUT)/noop.wasm' ./bench/noop
	cd $(MEASURE_DIR) && go run ./v8prof/seed > '$(V8PROF_OUT)/seed.json'
	cd $(MEASURE_DIR)/v8prof && node --disable-warning=ExperimentalWarning hit.mjs --wasm '$(MEASURE_WASM)' \
		--seed '$(V8PROF_OUT)/seed.json' --profile '$(V8PROF_OUT)' --label filter $(V8PROF_FLAGS)
	cd $(MEASURE_DIR)/v8prof && node --disable-warning=ExperimentalWarning hit.mjs --wasm '$(V8PROF_OUT)/noop.wasm' --expect unchanged \
		--seed '$(V8PROF_OUT)/seed.json' --profile '$(V8PROF_OUT)' --label noop $(V8PROF_FLAGS)
	cd $(MEASURE_DIR)/v8prof && node report.mjs '$(V8PROF_OUT)/filter.cpuprofile' '$(V8PROF_OUT)/noop.cpuprofile'
