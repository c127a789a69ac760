package wasmimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/phantom-token/envoy-phantom-token/istio/wasmimage"
)

// module is the smallest wasm binary: the magic and version 1, then a custom
// section, so that two modules can differ.
func module(custom string) []byte {
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	if custom != "" {
		payload := append([]byte{byte(len("x"))}, 'x')
		payload = append(payload, custom...)
		m = append(m, 0x00, byte(len(payload)))
		m = append(m, payload...)
	}
	return m
}

func TestBuildIsTheCompatImage(t *testing.T) {
	mod := module("phantom")
	img, err := wasmimage.Build(mod)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %q, want %q (a Docker manifest makes istio-agent expect a Docker layer)", m.MediaType, types.OCIManifestSchema1)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("config has %d diff IDs, want 1", len(cfg.RootFS.DiffIDs))
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc) // the blob itself is gzip, as the media type says
	if err != nil {
		t.Fatalf("layer blob is not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag != tar.TypeReg {
			t.Errorf("%s: type %c, want a regular file", h.Name, h.Typeflag)
		}
		got, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, mod) {
			t.Errorf("%s holds %d bytes that are not the module", h.Name, len(got))
		}
	}
	if len(names) != 1 || names[0] != "plugin.wasm" {
		t.Errorf("layer holds %q, want exactly [plugin.wasm]", names)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	digest := func(mod []byte) v1.Hash {
		t.Helper()
		img, err := wasmimage.Build(mod)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := digest(module("phantom")), digest(module("phantom"))
	if a != b {
		t.Errorf("two builds of one module: %s and %s", a, b)
	}
	if c := digest(module("phantom2")); c == a {
		t.Errorf("two different modules share the digest %s", a)
	}
}

func TestBuildRefusesWhatIsNotWasm(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("\x00asm"), []byte("#!/bin/sh\necho not wasm\n")} {
		if _, err := wasmimage.Build(in); err == nil || !strings.Contains(err.Error(), "not a wasm binary") {
			t.Errorf("Build(%q) = %v, want a 'not a wasm binary' error", in, err)
		}
	}
}

func TestLayoutKeepsTheDigest(t *testing.T) {
	img, err := wasmimage.Build(module("phantom"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	dir := t.TempDir() + "/image"
	// Written twice: the second write replaces the first instead of adding a
	// second image that ReadLayout would refuse.
	for range 2 {
		if err := wasmimage.WriteLayout(dir, img, "1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	back, err := wasmimage.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.Digest(); got != want {
		t.Errorf("digest after the layout %s, want %s", got, want)
	}
	if _, err := wasmimage.ReadLayout(t.TempDir()); err == nil {
		t.Error("ReadLayout of an empty directory succeeded")
	}
}

func TestPushServesTheLocalDigest(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the machine
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	img, err := wasmimage.Build(module("phantom"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	pushed, err := wasmimage.Push(context.Background(), img, host+"/phantom-token:1.0.0", true)
	if err != nil {
		t.Fatal(err)
	}
	if pushed.DigestStr() != want.String() || pushed.Context().Name() != host+"/phantom-token" {
		t.Errorf("Push returned %s, want %s/phantom-token@%s", pushed, host, want)
	}
	ref, err := name.ParseReference(host+"/phantom-token:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want || desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("registry serves %s %s, want %s %s", desc.MediaType, desc.Digest, types.OCIManifestSchema1, want)
	}

	if _, err := wasmimage.Push(context.Background(), img, "not a reference", true); err == nil {
		t.Error("Push to an invalid reference succeeded")
	}
}
