// Package quickstart runs the root envoy.yaml as `make run` does: the local
// identity server and echo API on the ports that file expects, and Envoy
// (through func-e) with the compiled module.
package quickstart

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	funce "github.com/tetratelabs/func-e"
	"github.com/tetratelabs/func-e/api"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
)

// The addresses and credentials the root envoy.yaml is written for.
const (
	EnvoyURL      = "http://127.0.0.1:8080"
	AdminURL      = "http://127.0.0.1:9901"
	IdSAddr       = "127.0.0.1:8443"
	APIAddr       = "127.0.0.1:8081"
	GatewayID     = "api-gateway"
	GatewaySecret = "local-gateway-secret"
	AppID         = "demo-app"
	AppSecret     = "demo-app-secret"
)

// Stack is a running quick start.
type Stack struct {
	IdS  *fixtures.IdS
	Echo *fixtures.Echo
	// exited is closed when Envoy exits; err is then why.
	exited chan struct{}
	err    error
	stop   context.CancelFunc
}

// Start runs everything from the repository root, which envoy.yaml's relative
// module path needs, and returns once Envoy is ready. Envoy's output goes to
// out.
func Start(root, envoyPath string, out io.Writer) (*Stack, error) {
	if err := os.Chdir(root); err != nil {
		return nil, err
	}
	s := &Stack{exited: make(chan struct{})}
	var err error
	if s.IdS, err = fixtures.StartIdS(IdSAddr, map[string]string{GatewayID: GatewaySecret, AppID: AppSecret}); err != nil {
		return nil, fmt.Errorf("identity server on %s: %w", IdSAddr, err)
	}
	if s.Echo, err = fixtures.StartEcho(APIAddr); err != nil {
		s.IdS.Close()
		return nil, fmt.Errorf("echo API on %s: %w", APIAddr, err)
	}
	// envoy.yaml copies this variable into the VM (host_env_keys), so the
	// secret never appears in the plugin configuration.
	os.Setenv("PHANTOM_TOKEN_CLIENT_SECRET", GatewaySecret)

	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go func() {
		defer close(s.exited)
		s.err = funce.Run(ctx, []string{"-c", "envoy.yaml", "--concurrency", "2",
			"--log-level", "warn", "--component-log-level", "wasm:info"},
			api.EnvoyPath(envoyPath), api.HomeDir(filepath.Join(root, "build", "func-e")),
			api.Out(out), api.EnvoyOut(out), api.EnvoyErr(out))
	}()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-s.exited:
			s.closeFixtures()
			return nil, fmt.Errorf("envoy exited: %v", s.err)
		default:
		}
		if resp, err := http.Get(AdminURL + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	s.Stop()
	return nil, fmt.Errorf("envoy not ready after 60s")
}

// Wait returns when Envoy exits.
func (s *Stack) Wait() error {
	<-s.exited
	return s.err
}

// Stop stops Envoy and the fixtures.
func (s *Stack) Stop() {
	s.stop()
	<-s.exited
	s.closeFixtures()
}

func (s *Stack) closeFixtures() {
	s.IdS.Close()
	s.Echo.Close()
}
