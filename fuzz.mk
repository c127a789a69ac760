# Fuzz targets with invariants, each run for $(FUZZTIME). Their seeds are in
# each package's testdata/fuzz/<Target>/, which plain `go test` replays. Run
# longer with `make fuzz FUZZTIME=10m`, or one target by copying its line
# with a longer -fuzztime. A failure writes the input to testdata/fuzz/.
FUZZTIME ?= 15s

.PHONY: fuzz

fuzz:
	go test -run=^$$ -fuzz=^FuzzFromHeader$$ -fuzztime=$(FUZZTIME) ./internal/bearer
	go test -run=^$$ -fuzz=^FuzzParse$$ -fuzztime=$(FUZZTIME) ./internal/jwt
	go test -run=^$$ -fuzz=^FuzzCacheControl$$ -fuzztime=$(FUZZTIME) ./internal/introspection
	go test -run=^$$ -fuzz=^FuzzClassify$$ -fuzztime=$(FUZZTIME) ./internal/introspection
	go test -run=^$$ -fuzz=^FuzzConfig$$ -fuzztime=$(FUZZTIME) ./internal/config
	go test -run=^$$ -fuzz=^FuzzSplitURL$$ -fuzztime=$(FUZZTIME) ./internal/config
	go test -run=^$$ -fuzz=^FuzzDepth$$ -fuzztime=$(FUZZTIME) ./internal/jsonlimit
	go test -run=^$$ -fuzz=^FuzzDecode$$ -fuzztime=$(FUZZTIME) ./internal/cache
	go test -run=^$$ -fuzz=^FuzzJSON$$ -fuzztime=$(FUZZTIME) ./internal/routemeta
	go test -run=^$$ -fuzz=^FuzzFromXFCC$$ -fuzztime=$(FUZZTIME) ./internal/certbound
	go test -run=^$$ -fuzz=^FuzzDecode$$ -fuzztime=$(FUZZTIME) ./internal/replay
	go test -run=^$$ -fuzz=^FuzzParse$$ -fuzztime=$(FUZZTIME) ./internal/dpop
	go test -run=^$$ -fuzz=^FuzzThumbprint$$ -fuzztime=$(FUZZTIME) ./internal/dpop
	go test -run=^$$ -fuzz=^FuzzVerify$$ -fuzztime=$(FUZZTIME) ./internal/dpop/pss
