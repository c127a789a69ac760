module github.com/phantom-token/envoy-phantom-token/e2e

go 1.26.8
