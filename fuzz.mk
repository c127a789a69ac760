# Fuzz targets with invariants. Their seeds are in each package's
# testdata/fuzz/<Target>/, which plain `go test` replays.
#
# Each target runs a fixed number of executions (about 10 s each on a 2-core
# machine), not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a target with a bare "context deadline exceeded" at the deadline when
# the machine is loaded (go.dev/issue/75804, fixed in Go 1.27), having found
# nothing. A count has no deadline to race. Run longer with
# `make fuzz FUZZTIME=10m` (a duration then applies to every target). A
# failure writes the input to testdata/fuzz/.

# fuzz1 runs one target: $(1) target, $(2) package, $(3) executions.
fuzz1 = go test -run=^$$ -fuzz=^$(1)$$ -fuzztime=$(if $(FUZZTIME),$(FUZZTIME),$(3)x) $(2)

.PHONY: fuzz

fuzz:
	$(call fuzz1,FuzzFromHeader,./internal/bearer,700000)
	$(call fuzz1,FuzzWithSchemeAsWritten,./internal/bearer,800000)
	$(call fuzz1,FuzzParse,./internal/jwt,550000)
	$(call fuzz1,FuzzCacheControl,./internal/introspection,600000)
	$(call fuzz1,FuzzClassify,./internal/introspection,580000)
	$(call fuzz1,FuzzConfig,./internal/config,150000)
	$(call fuzz1,FuzzSplitURL,./internal/config,480000)
	$(call fuzz1,FuzzDepth,./internal/jsonlimit,200000)
	$(call fuzz1,FuzzDecode,./internal/cache,800000)
	$(call fuzz1,FuzzJSON,./internal/routemeta,700000)
	$(call fuzz1,FuzzFromXFCC,./internal/certbound,580000)
	$(call fuzz1,FuzzDecode,./internal/replay,1000000)
	$(call fuzz1,FuzzParse,./internal/dpop,150000)
	$(call fuzz1,FuzzThumbprint,./internal/dpop,420000)
	$(call fuzz1,FuzzVerify,./internal/dpop/pss,6000)
