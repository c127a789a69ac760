// Command wasm-image packs the filter module into the OCI image Istio pulls
// (see package wasmimage), writes it as an OCI image layout and prints its
// manifest digest; with -push it uploads that layout to a registry.
//
//	wasm-image -wasm build/phantom_token.wasm -layout build/image
//	wasm-image -layout build/image -push registry.example.com/phantom-token:1.0.0
//
// `make image` and `make push IMAGE=…` run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/phantom-token/envoy-phantom-token/istio/wasmimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wasm-image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("wasm-image", flag.ContinueOnError)
	wasmPath := fs.String("wasm", "", "build the image from this module and write it to -layout")
	layoutDir := fs.String("layout", "", "OCI image layout directory (written with -wasm, read with -push alone)")
	tag := fs.String("tag", "latest", "ref.name annotation of the image in the layout")
	push := fs.String("push", "", "push the image to this reference, registry/repository:tag")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to the registry of -push")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *layoutDir == "" {
		return errors.New("-layout is required")
	}
	if *wasmPath == "" && *push == "" {
		return errors.New("nothing to do: give -wasm to build, -push to push, or both")
	}

	if *wasmPath != "" {
		module, err := os.ReadFile(*wasmPath)
		if err != nil {
			return err
		}
		img, err := wasmimage.Build(module)
		if err != nil {
			return err
		}
		if err := wasmimage.WriteLayout(*layoutDir, img, *tag); err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "image:           %s (OCI layout, from %s)\n", *layoutDir, *wasmPath)
		fmt.Fprintf(out, "manifest digest: %s\n", digest)
		fmt.Fprintf(out, "sha256:          %s (WasmPlugin spec.sha256, TrafficExtension spec.wasm.sha256)\n", digest.Hex)
	}

	if *push != "" {
		img, err := wasmimage.ReadLayout(*layoutDir)
		if err != nil {
			return err
		}
		pushed, err := wasmimage.Push(ctx, img, *push, *insecure)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed:          %s\n", pushed)
		fmt.Fprintf(out, "url:             oci://%s\n", *push)
		fmt.Fprintf(out, "sha256:          %s\n", strings.TrimPrefix(pushed.DigestStr(), "sha256:"))
	}
	return nil
}
