// Command run is `make run`: the root envoy.yaml with the compiled module in
// Envoy, a local identity server and an echo API. Ctrl-C stops everything.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
	qs "github.com/phantom-token/envoy-phantom-token/e2e/quickstart"
)

func main() {
	root := flag.String("root", "..", "repository root (holds envoy.yaml and build/)")
	flag.Parse()
	log.SetFlags(0)
	envoyPath := os.Getenv("ENVOY_PATH")
	if envoyPath == "" {
		log.Fatal("ENVOY_PATH is not set: run this through `make run`")
	}
	dir, err := filepath.Abs(*root)
	if err != nil {
		log.Fatal(err)
	}
	work := filepath.Join(dir, "build", "run")
	if err := os.MkdirAll(work, 0o755); err != nil {
		log.Fatal(err)
	}
	stack, err := qs.Start(dir, envoyPath, qs.Options{Dir: work, Out: os.Stderr})
	if err != nil {
		log.Fatalf("make run: %v", err)
	}
	p := stack.Ports
	envoyURL, idsAddr := "http://"+qs.Addr(p.Envoy), qs.Addr(p.IdS)
	fmt.Printf(`
Envoy is listening on %s (admin http://%s), in front of the echo API on
http://%s; the local identity server is on http://%s.
Envoy's log is also in %s.

Get a token from the local identity server:

  TOKEN=$(curl -s -u %s:%s -d grant_type=client_credentials -d scope=read \
    http://%s%s | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

Call the API through Envoy; the echo API shows the JWT it received:

  curl -s -H "Authorization: Bearer $TOKEN" %s/hello

Call it with a bad token and see the 401 with its challenge:

  curl -si -H "Authorization: Bearer not-a-real-token" %s/hello

Press Ctrl-C to stop.
`, envoyURL, qs.Addr(p.Admin), qs.Addr(p.API), idsAddr, stack.Envoy.LogPath, qs.AppID, qs.AppSecret, idsAddr, fixtures.TokenPath, envoyURL, envoyURL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- stack.Wait() }()
	select {
	case <-sig:
		stack.Stop()
	case err := <-exited:
		stack.Stop()
		text, _ := stack.Envoy.Log()
		if cause := harness.StartupCause(text); cause != "" {
			log.Fatalf("envoy exited (%v): %s; see %s", err, cause, stack.Envoy.LogPath)
		}
		log.Fatalf("envoy exited (%v); see %s", err, stack.Envoy.LogPath)
	}
}
