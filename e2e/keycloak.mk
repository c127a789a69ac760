# Keycloak for the e2e suite (e2e/keycloak): keycloak-quarkus-dist from Maven
# Central, fetched with the Maven client and extracted once into a git-ignored
# cache. Included from e2e.mk.
#
#   make e2e-keycloak-dist   fetch and extract Keycloak (needs mvn; running it needs Java 17+)
#   make e2e-keycloak        run the Keycloak tests alone (make e2e runs them too)
#
# KEYCLOAK_HOME, when set in the environment (or on the command line), names an
# extracted Keycloak distribution to use, and nothing is fetched.

KEYCLOAK_VERSION ?= 26.7.3
# SHA-256 of keycloak-quarkus-dist-$(KEYCLOAK_VERSION).tar.gz, checked before
# extraction (Maven itself is told to fail on a bad checksum too).
KEYCLOAK_SHA256 ?= 77657f30b7e90d70f727712ce1c967f430fd6a5e9f458d32d8c6df0635345f47
KEYCLOAK_CACHE ?= $(abspath $(E2E_DIR)/../.cache/keycloak)
# Pinned, so the fetch does not depend on whichever version Maven resolves.
MAVEN_DEPENDENCY_PLUGIN ?= org.apache.maven.plugins:maven-dependency-plugin:3.8.1

KEYCLOAK_TARBALL := $(KEYCLOAK_CACHE)/keycloak-quarkus-dist-$(KEYCLOAK_VERSION).tar.gz
# Where the tarball extracts to (its top-level directory).
KEYCLOAK_DIST := $(KEYCLOAK_CACHE)/keycloak-$(KEYCLOAK_VERSION)

ifeq ($(origin KEYCLOAK_HOME),undefined)
KEYCLOAK_HOME := $(KEYCLOAK_DIST)
KEYCLOAK_DEP := e2e-keycloak-dist
endif
KEYCLOAK_STAMP := $(KEYCLOAK_CACHE)/.extracted-$(KEYCLOAK_VERSION)

.PHONY: e2e-keycloak e2e-keycloak-dist

e2e-keycloak: build $(E2E_ENVOY_DEP) $(KEYCLOAK_DEP)
	cd $(E2E_DIR) && ENVOY_PATH='$(ENVOY_PATH)' WASM_PATH='$(E2E_WASM)' KEYCLOAK_HOME='$(KEYCLOAK_HOME)' \
		go test -count=1 -timeout 10m $(E2E_GO_TEST_FLAGS) ./keycloak

e2e-keycloak-dist: $(KEYCLOAK_STAMP)

$(KEYCLOAK_TARBALL):
	@mkdir -p $(KEYCLOAK_CACHE)
	mvn --batch-mode --no-transfer-progress --strict-checksums \
		$(MAVEN_DEPENDENCY_PLUGIN):copy \
		-Dartifact=org.keycloak:keycloak-quarkus-dist:$(KEYCLOAK_VERSION):tar.gz \
		-DoutputDirectory='$(KEYCLOAK_CACHE)'
	@test -f $@ || { echo "mvn did not write $@" >&2; exit 1; }

$(KEYCLOAK_STAMP): $(KEYCLOAK_TARBALL)
	echo '$(KEYCLOAK_SHA256)  $(KEYCLOAK_TARBALL)' | sha256sum --check --quiet
	rm -rf '$(KEYCLOAK_DIST)'
	tar -xzf '$(KEYCLOAK_TARBALL)' -C '$(KEYCLOAK_CACHE)' --no-same-owner
	test -x '$(KEYCLOAK_DIST)/bin/kc.sh'
	touch $@
