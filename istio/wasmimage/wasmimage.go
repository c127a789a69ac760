// Package wasmimage packs the filter module into the image istio-agent pulls
// for a WasmPlugin or TrafficExtension with an oci:// URL: the *compat* variant
// of the Wasm image specification, an OCI image whose one layer
// (application/vnd.oci.image.layer.v1.tar+gzip) holds a file named plugin.wasm,
// with linux/amd64 in its config.
//
// The image is reproducible: the same module always gives the same manifest
// digest, which is what spec.sha256 pins (not the hash of plugin.wasm).
package wasmimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FileName is the name istio-agent looks for in the layer.
const FileName = "plugin.wasm"

// Platform is the platform in the image config. istio-agent picks linux/amd64
// from an index whatever the node's architecture; a wasm module runs anywhere.
var Platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// epoch is every timestamp in the image, so that a rebuild of the same module
// gives the same digest.
var epoch = time.Unix(0, 0).UTC()

// wasmMagic starts every wasm binary; istio-agent refuses anything else.
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d}

// Build returns the compat image holding module as plugin.wasm.
func Build(module []byte) (v1.Image, error) {
	if len(module) < 8 || !bytes.Equal(module[:4], wasmMagic) {
		return nil, errors.New("wasmimage: the module is not a wasm binary (no \\0asm header)")
	}
	layerTar, err := tarOf(module)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestCompression),
	)
	if err != nil {
		return nil, fmt.Errorf("wasmimage: layer: %w", err)
	}

	// An OCI manifest: istio-agent reads a Docker manifest as a Docker image,
	// whose layer must then have the Docker media type.
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Created:      v1.Time{Time: epoch},
		OS:           Platform.OS,
		Architecture: Platform.Architecture,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("wasmimage: config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "phantom-token wasmimage", Comment: FileName},
	})
	if err != nil {
		return nil, fmt.Errorf("wasmimage: append layer: %w", err)
	}
	return img, nil
}

// tarOf is a tar archive with one regular file, plugin.wasm.
func tarOf(module []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     FileName,
		Mode:     0o644,
		Size:     int64(len(module)),
		ModTime:  epoch,
		Format:   tar.FormatPAX,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(module); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout replaces dir with an OCI image layout holding img alone, tagged
// refName (the org.opencontainers.image.ref.name annotation) when not empty.
func WriteLayout(dir string, img v1.Image, refName string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("wasmimage: layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName}))
	}
	opts = append(opts, layout.WithPlatform(Platform))
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("wasmimage: layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the one image of the OCI image layout at dir, as written
// by WriteLayout.
func ReadLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("wasmimage: %s is not an OCI image layout (run `make image`): %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("wasmimage: layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("wasmimage: layout %s holds %d manifests, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

// Push uploads img to the registry reference ref (registry/repository:tag),
// with the credentials of the Docker config ($DOCKER_CONFIG or ~/.docker), and
// returns the pushed image's digest reference, after checking that the
// registry serves the manifest under the local digest. insecure allows plain
// HTTP to the registry.
func Push(ctx context.Context, img v1.Image, ref string, insecure bool) (name.Digest, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(ref, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("wasmimage: image reference %q: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if err := remote.Write(tag, img, ropts...); err != nil {
		return name.Digest{}, fmt.Errorf("wasmimage: push %s: %w", tag, err)
	}
	desc, err := remote.Head(tag, ropts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("wasmimage: check %s after push: %w", tag, err)
	}
	if desc.Digest != digest {
		return name.Digest{}, fmt.Errorf("wasmimage: %s is served with digest %s, but the pushed image has %s", tag, desc.Digest, digest)
	}
	return tag.Context().Digest(digest.String()), nil
}
