package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// minimalWasm is the wasm magic and version 1: an empty, valid module.
var minimalWasm = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

func TestBuildThenPush(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	dir := t.TempDir()
	wasm := filepath.Join(dir, "phantom_token.wasm")
	if err := os.WriteFile(wasm, minimalWasm, 0o644); err != nil {
		t.Fatal(err)
	}
	layoutDir := filepath.Join(dir, "image")

	var built strings.Builder
	if err := run(context.Background(), []string{"-wasm", wasm, "-layout", layoutDir}, &built); err != nil {
		t.Fatal(err)
	}
	digest := regexp.MustCompile(`(?m)^manifest digest: sha256:([0-9a-f]{64})$`).FindStringSubmatch(built.String())
	if digest == nil {
		t.Fatalf("no manifest digest in the output:\n%s", built.String())
	}
	if !strings.Contains(built.String(), "sha256:          "+digest[1]+" ") {
		t.Errorf("the sha256 line does not repeat the manifest digest:\n%s", built.String())
	}

	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/filters/phantom-token:1.0.0"
	var pushed strings.Builder
	if err := run(context.Background(), []string{"-layout", layoutDir, "-push", ref, "-insecure"}, &pushed); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pushed:          " + strings.TrimSuffix(ref, ":1.0.0") + "@sha256:" + digest[1] + "\n",
		"url:             oci://" + ref + "\n",
		"sha256:          " + digest[1] + "\n",
	} {
		if !strings.Contains(pushed.String(), want) {
			t.Errorf("push output lacks %q:\n%s", want, pushed.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-layout is required"},
		{[]string{"-layout", t.TempDir()}, "nothing to do"},
		{[]string{"-layout", t.TempDir(), "-wasm", filepath.Join(t.TempDir(), "missing.wasm")}, "no such file"},
		{[]string{"-layout", t.TempDir(), "-push", "registry.invalid/x:1"}, "not an OCI image layout"},
		{[]string{"-layout", "x", "extra"}, "unexpected arguments"},
	} {
		err := run(context.Background(), tc.args, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
