// Package quickstart runs the root envoy.yaml as `make run` does: the local
// identity server and echo API on the ports that file names, and Envoy
// (through the e2e harness) with the compiled module.
package quickstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// Ports are the loopback ports of a quick start.
type Ports struct {
	Envoy, Admin, IdS, API int
}

// ReadmePorts are the ports the root envoy.yaml is written for and the
// README's quick start uses: `make run` takes them.
var ReadmePorts = Ports{Envoy: 8080, Admin: 9901, IdS: 8443, API: 8081}

// The credentials the root envoy.yaml and the README's quick start use.
const (
	GatewayID     = "api-gateway"
	GatewaySecret = "local-gateway-secret"
	AppID         = "demo-app"
	AppSecret     = "demo-app-secret"
)

// Addr is a loopback address.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Options say where a quick start runs.
type Options struct {
	// FreePorts runs envoy.yaml with the ports of ReadmePorts replaced by free
	// ones (a copy in Dir), so that it runs beside a `make run`; otherwise the
	// file runs as it is, on ReadmePorts.
	FreePorts bool
	// Dir receives Envoy's log (envoy.log) and, with FreePorts, the copy of
	// envoy.yaml. Required.
	Dir string
	// Out, when set, also receives Envoy's output.
	Out io.Writer
}

// Stack is a running quick start.
type Stack struct {
	IdS   *fixtures.IdS
	Echo  *fixtures.Echo
	Envoy *harness.Envoy
	// Ports are the ports in use.
	Ports Ports
	// EnvoyURL is the base URL of envoy.yaml's "api" listener.
	EnvoyURL string
}

// Start runs everything from the repository root, which envoy.yaml's relative
// module path needs, and returns once Envoy is ready. Whatever cannot start
// is named in the error: a port in use, or Envoy's reason with its last log
// lines.
func Start(root, envoyPath string, o Options) (*Stack, error) {
	if err := os.Chdir(root); err != nil {
		return nil, err
	}
	config := filepath.Join(root, "envoy.yaml")
	s := &Stack{}
	idsAddr, apiAddr := fixtures.AnyPort, fixtures.AnyPort
	if !o.FreePorts {
		if err := CheckFree(ReadmePorts); err != nil {
			return nil, err
		}
		idsAddr, apiAddr = Addr(ReadmePorts.IdS), Addr(ReadmePorts.API)
	}
	var err error
	if s.IdS, err = fixtures.StartIdS(idsAddr, map[string]string{GatewayID: GatewaySecret, AppID: AppSecret}); err != nil {
		return nil, listenError(idsAddr, "the local identity server", err)
	}
	if s.Echo, err = fixtures.StartEcho(apiAddr); err != nil {
		s.IdS.Close()
		return nil, listenError(apiAddr, "the echo API", err)
	}
	s.Ports = ReadmePorts
	if o.FreePorts {
		// Envoy's listener and admin server bind port 0; the harness reads
		// the ports Envoy took.
		s.Ports = Ports{Envoy: 0, Admin: 0, IdS: s.IdS.Addr.Port, API: s.Echo.Addr.Port}
		if config, err = copyWithPorts(config, o.Dir, s.Ports); err != nil {
			s.closeFixtures()
			return nil, err
		}
	}
	// envoy.yaml copies this variable into the VM (host_env_keys), so the
	// secret never appears in the plugin configuration.
	os.Setenv("PHANTOM_TOKEN_CLIENT_SECRET", GatewaySecret)

	s.Envoy, err = harness.StartFile(context.Background(), harness.FileConfig{
		EnvoyPath:  envoyPath,
		ConfigPath: config,
		Dir:        o.Dir,
		Args:       []string{"--concurrency", "2", "--log-level", "warn", "--component-log-level", "wasm:info"},
		Out:        o.Out,
	})
	if err != nil {
		s.closeFixtures()
		return nil, err
	}
	s.EnvoyURL = s.Envoy.URL("api")
	return s, nil
}

// CheckFree fails, naming the port and what it is for, when one of the ports
// is in use.
func CheckFree(p Ports) error {
	for _, use := range []struct {
		port int
		what string
	}{
		{p.Envoy, "Envoy's listener"},
		{p.Admin, "Envoy's admin server"},
		{p.IdS, "the local identity server"},
		{p.API, "the echo API"},
	} {
		ln, err := net.Listen("tcp", Addr(use.port))
		if err != nil {
			return listenError(Addr(use.port), use.what, err)
		}
		_ = ln.Close()
	}
	return nil
}

// listenError names the address and its use, and says so plainly when the
// port is taken.
func listenError(addr, what string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		p := ReadmePorts
		return fmt.Errorf("%s for %s is already in use: is `make run` already running in another terminal? "+
			"Stop it, or the program listening there (`ss -ltnp` names it); envoy.yaml and the README's quick start use ports %d, %d, %d and %d",
			addr, what, p.Envoy, p.Admin, p.IdS, p.API)
	}
	return fmt.Errorf("%s on %s: %w", what, addr, err)
}

// portValue matches a port in envoy.yaml: a socket address's port_value and
// the introspection URL's authority.
var portValue = regexp.MustCompile(`(port_value: |127\.0\.0\.1:)(\d+)\b`)

// copyWithPorts writes a copy of envoy.yaml into dir with the ports of
// ReadmePorts replaced by p's, and returns its path. Each port must appear as
// a port_value exactly once, so that a change of envoy.yaml that this copy
// would get wrong fails here instead of testing something else.
func copyWithPorts(path, dir string, p Ports) (string, error) {
	yaml, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	to := map[string]int{
		strconv.Itoa(ReadmePorts.Envoy): p.Envoy,
		strconv.Itoa(ReadmePorts.Admin): p.Admin,
		strconv.Itoa(ReadmePorts.IdS):   p.IdS,
		strconv.Itoa(ReadmePorts.API):   p.API,
	}
	seen := map[string]int{}
	out := portValue.ReplaceAllFunc(yaml, func(m []byte) []byte {
		sub := portValue.FindSubmatch(m)
		port, ok := to[string(sub[2])]
		if !ok {
			return m
		}
		if string(sub[1]) == "port_value: " {
			seen[string(sub[2])]++
		}
		return append(append([]byte(nil), sub[1]...), strconv.Itoa(port)...)
	})
	for from := range to {
		if seen[from] != 1 {
			return "", fmt.Errorf("envoy.yaml has port_value %s %d times, want once: update e2e/quickstart", from, seen[from])
		}
	}
	copyPath := filepath.Join(dir, "envoy.yaml")
	return copyPath, os.WriteFile(copyPath, out, 0o600)
}

// Wait returns when Envoy exits.
func (s *Stack) Wait() error { return s.Envoy.Wait() }

// Stop stops Envoy and the fixtures.
func (s *Stack) Stop() {
	_ = s.Envoy.Stop()
	s.closeFixtures()
}

func (s *Stack) closeFixtures() {
	s.IdS.Close()
	s.Echo.Close()
}
