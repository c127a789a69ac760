// Package harness runs Envoy, through func-e's library, with the phantom token
// wasm filter on one listener per plugin configuration ("scenario"), so one
// Envoy process serves every configuration a test suite needs.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	funce "github.com/tetratelabs/func-e"
	"github.com/tetratelabs/func-e/api"
)

// Scenario is one plugin configuration, served on its own listener whose routes
// all go to Config.Upstream.
type Scenario struct {
	// Name names the listener and its stats; unique within a Config.
	Name string
	// Plugin is the plugin configuration: a string is used verbatim, anything
	// else is marshalled to JSON. Nil means no wasm filter on this listener.
	Plugin any
	// Env holds environment variables of the VM (vm_config.environment_variables).
	Env map[string]string
	// WasmPath, when set, is this listener's module instead of
	// Config.WasmPath (an absolute path).
	WasmPath string
	// VMID is vm_config.vm_id. Scenarios with the same VMID and Env share one VM
	// per worker, as Istio does with every WasmPlugin.
	VMID string
	// Routes, when set, is the listener's route table, in match order,
	// instead of one unnamed route for "/". Such a listener also gets the path
	// handling route rules rely on: normalize_path, merge_slashes, and 400
	// for an encoded slash (see pathHandling in bootstrap.go).
	Routes []Route
	// VirtualHostMetadata is the filter_metadata of the listener's one
	// virtual host: namespace → keys (e.g. "phantom_token" → policy keys).
	VirtualHostMetadata map[string]any
	// TLS, when set, makes the listener terminate TLS (URL is then https),
	// and, with a client CA, ask for client certificates.
	TLS *TLS
	// ForwardClientCert is the connection manager's
	// forward_client_cert_details, what it does with x-forwarded-client-cert
	// (XFCC) before the filters run. On a connection with a client
	// certificate: "SANITIZE_SET" replaces the client's header with one
	// element for that certificate, "APPEND_FORWARD" appends that element to
	// it, "FORWARD_ONLY" passes it on. On any other connection these three
	// remove it, like "SANITIZE" always does; only "ALWAYS_FORWARD_ONLY"
	// passes it on whatever the connection (a gateway behind a terminator
	// that reaches it over plain HTTP needs that one). Empty leaves the
	// setting out: Envoy's default, SANITIZE. The element Envoy makes holds
	// Hash (the certificate's hex SHA-256) and By (the listener
	// certificate's URI SAN, if any), always, plus Subject, URI and DNS here;
	// never the certificate itself.
	ForwardClientCert string
	// Upstream, when set, is the cluster this listener routes to instead of
	// Config.Upstream, e.g. a cluster that reaches another listener's Port,
	// as a TLS terminator in front of a gateway.
	Upstream string
	// Port, when set, is the listener's port on 127.0.0.1 instead of one the
	// kernel picks, so that a cluster can name it.
	Port int
}

// TLS is a listener's DownstreamTlsContext.
type TLS struct {
	// CertFile and KeyFile are the server's certificate chain and private
	// key, PEM files.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the listener ask every client for a
	// certificate and validate one against the CA certificates in this PEM
	// file: a certificate that does not chain to them fails the handshake.
	// A client without a certificate is let in unless RequireClientCert.
	ClientCAFile string
	// RequireClientCert fails the handshake of a client without a
	// certificate (require_client_certificate). It needs ClientCAFile.
	RequireClientCert bool
	// AcceptUntrusted lets in a client certificate that does not chain to
	// ClientCAFile (trust_chain_verification ACCEPT_UNTRUSTED), such as a
	// self-signed one (RFC 8705 §2.2): its thumbprint is then all that
	// binds it. It needs ClientCAFile.
	AcceptUntrusted bool
}

// Route is one route of a scenario's own route table; it goes to
// Config.Upstream.
type Route struct {
	// Name is the route's name, what the filter reads as xds.route_name;
	// empty for an unnamed route.
	Name string
	// Prefix or Path (exactly one) is what the route matches.
	Prefix, Path string
	// CaseInsensitive sets match.case_sensitive false; Envoy matches case
	// sensitively by default.
	CaseInsensitive bool
	// Metadata is the route's filter_metadata: namespace → keys.
	Metadata map[string]any
	// FilterDisabled turns the wasm filter off on this route with Envoy's
	// per-route FilterConfig{disabled: true}: the filter does not run at all.
	FilterDisabled bool
}

// Config describes an Envoy to start.
type Config struct {
	// EnvoyPath is the Envoy binary (func-e's library does not read ENVOY_PATH).
	EnvoyPath string
	// WasmPath is the filter module; required when a scenario has a Plugin.
	WasmPath string
	// Dir receives the bootstrap, the log and func-e's state. Required.
	Dir string
	// Clusters are STATIC clusters, name → "127.0.0.1:port".
	Clusters map[string]string
	// Upstream is the cluster the listeners route to.
	Upstream string
	// Scenarios are the listeners.
	Scenarios []Scenario
	// Concurrency is Envoy's worker count; 2 when zero.
	Concurrency int
	// StartTimeout bounds the wait for readiness; 60s when zero.
	StartTimeout time.Duration
	// ListenersViaLDS serves the listeners through file-based LDS instead of
	// the bootstrap. Envoy then rejects a listener whose filter fails to start
	// on its own, keeping the others, instead of exiting: one Envoy can check
	// many bad plugin configurations (see StartupError.Missing).
	ListenersViaLDS bool
	// WasmLogLevel is Envoy's log level for the wasm component; debug when
	// empty, so tests see the plugin's per-request lines. A benchmark sets
	// info: per-request debug logging would be part of what it measures.
	WasmLogLevel string
	// AsyncResponseBufferLimit is Envoy's runtime value
	// http.async_response_buffer_limit, in bytes: the most of an answer that
	// Envoy's async HTTP client (the one behind DispatchHttpCall) buffers
	// before it resets the call, which the filter then answers with 502. It is
	// process-wide. Zero means DefaultAsyncResponseBufferLimit; a negative
	// value leaves Envoy's own default (32 MiB).
	AsyncResponseBufferLimit int
	// ClusterTLS makes the named clusters connect with TLS (mutual TLS with
	// a client certificate), as Istio's proxies do to each other.
	ClusterTLS map[string]ClusterTLS
	// CircuitBreakers gives clusters, by name, circuit-breaker thresholds
	// (the default priority); other clusters keep Envoy's defaults.
	CircuitBreakers map[string]CircuitBreakers
	// DrainTime is Envoy's --drain-time-s: how long a replaced listener's
	// filter chains (and their plugin) live on after UpdateListeners. Envoy's
	// default, 600s, when zero.
	DrainTime time.Duration
}

// DefaultAsyncResponseBufferLimit is what the harness sets, like the example
// envoy.yaml: 128 KiB. The largest answer the filter accepts with its default
// max_jwt_size (16 KiB) is 68 KiB (a jwt_member JSON answer may hold
// 4 × max_jwt_size + 4 KiB), so every answer it could accept reaches it, while
// a 10 MB answer is cut off after 128 KiB instead of being held whole in
// Envoy's memory.
const DefaultAsyncResponseBufferLimit = 128 << 10

// ClusterTLS is a cluster's UpstreamTlsContext.
type ClusterTLS struct {
	// CAFile holds the CA certificates the endpoint's certificate must
	// chain to, PEM.
	CAFile string
	// CertFile and KeyFile, when set, are the client certificate and key
	// Envoy presents, PEM.
	CertFile, KeyFile string
	// ServerName, when set, is the name Envoy sends as SNI and requires
	// among the endpoint certificate's DNS subject alternative names (an
	// exact match); without it any certificate of the CA is accepted.
	ServerName string
}

// CircuitBreakers are an Envoy cluster's thresholds; zero leaves Envoy's
// default (1024 each).
type CircuitBreakers struct {
	MaxConnections, MaxPendingRequests, MaxRequests int
}

// Envoy is a running Envoy.
type Envoy struct {
	// AdminURL is the admin server's base URL.
	AdminURL string
	// LogPath is the file holding Envoy's stdout and stderr.
	LogPath string

	listeners     map[string]string
	cfg           Config
	ldsPath       string
	bootstrapPath string
	cancel        context.CancelFunc
	// exited is closed when the process has ended; exitErr is then why.
	exited   chan struct{}
	exitErr  error
	logFile  *os.File
	stopOnce sync.Once
	stopErr  error
}

// StartupError is returned by Start when Envoy exits before it is ready or
// comes up without some of its listeners.
type StartupError struct {
	// Exited is true when the process ended; Err is then its exit error.
	Exited bool
	Err    error
	// Missing lists the scenarios whose listener Envoy does not have.
	Missing []string
	// Log is Envoy's output; LogPath the file that holds it.
	Log     string
	LogPath string
}

func (e *StartupError) Error() string {
	var what string
	if e.Exited {
		what = fmt.Sprintf("envoy exited before it was ready (%v)", e.Err)
	} else {
		what = fmt.Sprintf("envoy has no listener for %v", e.Missing)
	}
	if cause := StartupCause(e.Log); cause != "" {
		what += ": " + cause
	}
	return what + "\n" + logTail(e.Log, e.LogPath)
}

// tailLines is how many of Envoy's last log lines an error shows.
const tailLines = 20

// logTail is the last tailLines lines of an Envoy log, introduced with where
// the whole log is.
func logTail(log, path string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "…"
		}
	}
	head := "last lines of Envoy's log"
	if path != "" {
		head += " (" + path + ")"
	}
	return head + ":\n" + strings.Join(lines, "\n")
}

// cannotBind is how Envoy reports a listener or admin address it cannot bind.
var cannotBind = regexp.MustCompile(`cannot bind '([^']*)': ([^\n]*)`)

// StartupCause names, from an Envoy log, the reason Envoy could not start when
// it is one that a person on a shared machine meets: a port in use, or the
// hot-restart base id of another Envoy. It returns "" otherwise.
func StartupCause(log string) string {
	if m := cannotBind.FindStringSubmatch(log); m != nil {
		if strings.Contains(m[2], "in use") {
			return "address " + m[1] + " is already in use (another Envoy, another `make run`, or another program listens on it)"
		}
		return "cannot bind " + m[1] + ": " + m[2]
	}
	if strings.Contains(log, "unable to bind domain socket with base_id") {
		return "another Envoy on this machine holds the same hot-restart base id (start Envoy with --disable-hot-restart)"
	}
	return ""
}

// Start writes the bootstrap, runs Envoy and returns once the admin server
// reports ready and every scenario's listener is bound. The listeners and the
// admin server bind port 0, so there is no race for free ports.
func Start(ctx context.Context, cfg Config) (*Envoy, error) {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 2
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.WasmLogLevel == "" {
		cfg.WasmLogLevel = "debug"
	}
	bootstrapPath := filepath.Join(cfg.Dir, "bootstrap.json")
	ldsPath := filepath.Join(cfg.Dir, "lds.json")
	bootstrap, lds, err := Bootstrap(cfg, ldsPath)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(bootstrapPath, bootstrap, 0o600); err != nil {
		return nil, err
	}
	if lds != nil {
		if err := os.WriteFile(ldsPath, lds, 0o600); err != nil {
			return nil, err
		}
	}
	args := []string{
		"--concurrency", strconv.Itoa(cfg.Concurrency),
		"--component-log-level", "wasm:" + cfg.WasmLogLevel,
	}
	if cfg.DrainTime > 0 {
		args = append(args, "--drain-time-s", strconv.Itoa(max(int(cfg.DrainTime.Seconds()), 1)))
	}
	e, err := launch(ctx, launchSpec{
		envoyPath: cfg.EnvoyPath, dir: cfg.Dir, bootstrapPath: bootstrapPath,
		args:         args,
		startTimeout: cfg.StartTimeout,
	})
	if err != nil {
		return nil, err
	}
	e.cfg, e.ldsPath = cfg, ldsPath
	waitCtx, stop := context.WithTimeout(ctx, cfg.StartTimeout)
	defer stop()
	if err := e.readListeners(waitCtx); err != nil {
		return nil, e.fail(err)
	}
	var missing []string
	for _, s := range cfg.Scenarios {
		if _, ok := e.listeners[s.Name]; !ok {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) > 0 {
		log, _ := e.Log()
		_ = e.Stop()
		return nil, &StartupError{Missing: missing, Log: log, LogPath: e.LogPath}
	}
	return e, nil
}

// FileConfig describes an Envoy to start from a configuration file of its
// own, such as the repository's envoy.yaml.
type FileConfig struct {
	// EnvoyPath is the Envoy binary.
	EnvoyPath string
	// ConfigPath is the bootstrap file (YAML or JSON). Relative paths in it
	// are relative to the working directory of this process.
	ConfigPath string
	// Dir receives the log, the admin address and func-e's state. Required.
	Dir string
	// Args are further Envoy arguments (log levels, --concurrency).
	Args []string
	// Out, when set, also receives Envoy's output as it comes.
	Out io.Writer
	// StartTimeout bounds the wait for readiness; 60s when zero.
	StartTimeout time.Duration
}

// StartFile runs Envoy with a configuration file of its own, as Start does
// with a generated one, and returns once the admin server reports ready. URL
// then knows the file's listeners by name.
func StartFile(ctx context.Context, cfg FileConfig) (*Envoy, error) {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	path, err := filepath.Abs(cfg.ConfigPath)
	if err != nil {
		return nil, err
	}
	e, err := launch(ctx, launchSpec{
		envoyPath: cfg.EnvoyPath, dir: cfg.Dir, bootstrapPath: path,
		args: cfg.Args, out: cfg.Out, startTimeout: cfg.StartTimeout,
	})
	if err != nil {
		return nil, err
	}
	waitCtx, stop := context.WithTimeout(ctx, cfg.StartTimeout)
	defer stop()
	if err := e.readListeners(waitCtx); err != nil {
		return nil, e.fail(err)
	}
	return e, nil
}

// launchSpec is what Start and StartFile have in common.
type launchSpec struct {
	envoyPath, dir, bootstrapPath string
	args                          []string
	out                           io.Writer
	startTimeout                  time.Duration
}

// launch runs Envoy on a bootstrap file, with its output in dir/envoy.log,
// and waits for the admin server to report ready. Every Envoy it starts runs
// with --disable-hot-restart, so that other Envoys on the machine (another
// `make run`, another test) never stop it, and writes its admin address to a
// file, so that the admin port may be 0.
func launch(ctx context.Context, l launchSpec) (*Envoy, error) {
	if l.envoyPath == "" {
		return nil, errors.New("no Envoy binary: set ENVOY_PATH (make e2e sets it from the project's venv)")
	}
	if _, err := os.Stat(l.envoyPath); err != nil {
		return nil, fmt.Errorf("envoy binary: %w", err)
	}
	adminAddrPath := filepath.Join(l.dir, "admin-address.txt")
	_ = os.Remove(adminAddrPath) // a file left by an earlier run would name its port
	e := &Envoy{LogPath: filepath.Join(l.dir, "envoy.log"), bootstrapPath: l.bootstrapPath, exited: make(chan struct{})}
	var err error
	if e.logFile, err = os.Create(e.LogPath); err != nil {
		return nil, err
	}
	var out io.Writer = e.logFile
	if l.out != nil {
		out = io.MultiWriter(e.logFile, l.out)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	args := append([]string{
		"-c", l.bootstrapPath,
		"--admin-address-path", adminAddrPath,
		"--disable-hot-restart", // several Envoys may run at once
	}, l.args...)
	go func() {
		defer close(e.exited)
		e.exitErr = funce.Run(runCtx, args,
			api.EnvoyPath(l.envoyPath),
			api.HomeDir(filepath.Join(l.dir, "func-e")),
			api.Out(out), api.EnvoyOut(out), api.EnvoyErr(out),
		)
	}()
	waitCtx, stop := context.WithTimeout(ctx, l.startTimeout)
	defer stop()
	if err := e.awaitReady(waitCtx, adminAddrPath); err != nil {
		return nil, e.fail(err)
	}
	return e, nil
}

// fail stops Envoy and turns err into a StartupError when Envoy exited.
func (e *Envoy) fail(err error) error {
	var exit *exitedError
	if errors.As(err, &exit) {
		e.cancel()
		log, _ := e.Log()
		_ = e.logFile.Close()
		return &StartupError{Exited: true, Err: exit.err, Log: log, LogPath: e.LogPath}
	}
	_ = e.Stop()
	log, _ := e.Log()
	if cause := StartupCause(log); cause != "" {
		err = fmt.Errorf("%w: %s", err, cause)
	}
	return fmt.Errorf("%w\n%s", err, logTail(log, e.LogPath))
}

type exitedError struct{ err error }

func (e *exitedError) Error() string { return fmt.Sprintf("envoy exited: %v", e.err) }

// awaitReady polls for the admin address file, then for /ready.
func (e *Envoy) awaitReady(ctx context.Context, adminAddrPath string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-e.exited:
			err := e.exitErr
			if err == nil {
				err = errors.New("exit status 0")
			}
			return &exitedError{err}
		case <-ctx.Done():
			return fmt.Errorf("envoy not ready: %w", ctx.Err())
		case <-tick.C:
		}
		if e.AdminURL == "" {
			addr, err := os.ReadFile(adminAddrPath)
			if err != nil || len(strings.TrimSpace(string(addr))) == 0 {
				continue
			}
			e.AdminURL = "http://" + strings.TrimSpace(string(addr))
		}
		if body, err := e.Admin(ctx, "/ready"); err == nil && strings.TrimSpace(body) == "LIVE" {
			return nil
		}
	}
}

// readListeners maps listener names to base URLs from the admin API (https
// for a scenario with TLS).
func (e *Envoy) readListeners(ctx context.Context) error {
	body, err := e.Admin(ctx, "/listeners?format=json")
	if err != nil {
		return err
	}
	var ls struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.Unmarshal([]byte(body), &ls); err != nil {
		return fmt.Errorf("admin /listeners: %w", err)
	}
	tls := map[string]bool{}
	for _, s := range e.cfg.Scenarios {
		tls[s.Name] = s.TLS != nil
	}
	e.listeners = map[string]string{}
	for _, l := range ls.ListenerStatuses {
		sa := l.LocalAddress.SocketAddress
		scheme := "http://"
		if tls[l.Name] {
			scheme = "https://"
		}
		e.listeners[l.Name] = scheme + net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue))
	}
	return nil
}

// UpdateListeners replaces the listeners with those of scenarios, through
// file-based LDS (Config.ListenersViaLDS): it writes the new listener file
// beside the watched one and renames it over it (Envoy's file watcher reacts
// to moves), then waits until Envoy has applied it, no listener warms and no
// replaced listener or filter chain drains any more (see Config.DrainTime),
// and reads the listeners' addresses again.
func (e *Envoy) UpdateListeners(ctx context.Context, scenarios []Scenario) error {
	if !e.cfg.ListenersViaLDS {
		return errors.New("harness: UpdateListeners needs Config.ListenersViaLDS")
	}
	cfg := e.cfg
	cfg.Scenarios = scenarios
	_, lds, err := Bootstrap(cfg, e.ldsPath)
	if err != nil {
		return err
	}
	before, err := e.Counter(ctx, "listener_manager.lds.update_success")
	if err != nil {
		return err
	}
	rejectedBefore, err := e.Counter(ctx, "listener_manager.lds.update_rejected")
	if err != nil {
		return err
	}
	tmp := e.ldsPath + ".new"
	if err := os.WriteFile(tmp, lds, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, e.ldsPath); err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: listener update not applied: %w", ctx.Err())
		case <-e.exited:
			return &exitedError{e.exitErr}
		case <-tick.C:
		}
		if rejected, err := e.Counter(ctx, "listener_manager.lds.update_rejected"); err == nil && rejected > rejectedBefore {
			log, _ := e.Log()
			return fmt.Errorf("harness: Envoy rejected the listener update; %s", logTail(log, e.LogPath))
		}
		done := true
		for name, want := range map[string]int{
			"listener_manager.lds.update_success":           before + 1,
			"listener_manager.total_listeners_warming":      0,
			"listener_manager.total_listeners_draining":     0,
			"listener_manager.total_filter_chains_draining": 0,
		} {
			got, err := e.Counter(ctx, name)
			if err != nil {
				return err
			}
			if name == "listener_manager.lds.update_success" && got < want || name != "listener_manager.lds.update_success" && got != want {
				done = false
			}
		}
		if done {
			e.cfg = cfg
			return e.readListeners(ctx)
		}
	}
}

// URL is the base URL of a scenario's listener.
func (e *Envoy) URL(scenario string) string {
	u, ok := e.listeners[scenario]
	if !ok {
		panic("harness: no listener for scenario " + scenario)
	}
	return u
}

// Admin GETs a path of the admin API and returns the body of a 200 answer.
func (e *Envoy) Admin(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.AdminURL+path, nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("admin %s: %s", path, res.Status)
	}
	return string(body), nil
}

// Counter returns the value of one counter or gauge from the admin /stats.
func (e *Envoy) Counter(ctx context.Context, name string) (int, error) {
	body, err := e.Admin(ctx, "/stats?filter="+url.QueryEscape("^"+regexp.QuoteMeta(name)+"$"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no stat %q", name)
}

// PID returns the process ID of this Envoy, for reading its memory from
// /proc. func-e's library does not expose it, so PID looks (Linux only) for
// the child process of this one whose command line names this Envoy's
// bootstrap file, which is unique per Start.
func (e *Envoy) PID() (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	want := []byte("\x00" + e.bootstrapPath + "\x00")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// stat is "pid (comm) state ppid ...", and comm may hold spaces.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && bytes.Contains(cmdline, want) {
			return pid, nil
		}
	}
	return 0, errors.New("harness: no child process runs this Envoy's bootstrap")
}

// RSSKiB returns this Envoy's resident set size (VmRSS in
// /proc/<pid>/status), in KiB.
func (e *Envoy) RSSKiB() (int, error) {
	pid, err := e.PID()
	if err != nil {
		return 0, err
	}
	return RSSKiB(pid)
}

// RSSKiB returns a process's resident set size (VmRSS), in KiB.
func RSSKiB(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// Log returns Envoy's output so far.
func (e *Envoy) Log() (string, error) {
	b, err := os.ReadFile(e.LogPath)
	return string(b), err
}

// Stop ends Envoy (func-e kills it when its context is cancelled), waits for
// it and returns the error of its run: nil unless it ended by itself with a
// failure before Stop. Calling Stop again returns the same.
func (e *Envoy) Stop() error {
	e.stopOnce.Do(func() {
		e.cancel()
		select {
		case <-e.exited:
			e.stopErr = e.exitErr
		case <-time.After(30 * time.Second):
			e.stopErr = errors.New("envoy did not stop within 30s")
		}
		_ = e.logFile.Close()
	})
	return e.stopErr
}

// Wait returns when Envoy exits, with the error of its run.
func (e *Envoy) Wait() error {
	<-e.exited
	return e.exitErr
}

// vmFailure matches Envoy's log lines that say a wasm VM failed: a trap or an
// exception in a callback ("Function: proxy_on_… failed: Uncaught RangeError:
// Maximum call stack size exceeded", "… unreachable"), a VM that crashed or
// is gone ("VM … crashed"), and the Go runtime dying inside the module
// ("fatal error: …", an unrecovered "panic: …", "goroutine … [running]").
var vmFailure = regexp.MustCompile(`(?i)` + strings.Join([]string{
	`Function: proxy_on_\w+ failed`,
	`wasm.*\b(crash|crashed|trap|unreachable|stack overflow|call stack size exceeded|out of bounds memory)\b`,
	`\bwasm\b.*\b(vm|plugin)\b.*\bfailed\b`,
	`wasm log.*: (fatal error: |panic: |runtime: goroutine stack exceeds|goroutine \d+ \[)`,
	`Proxy-Wasm plugin in-VM backtrace`,
}, "|"))

// VMFailures returns the lines of an Envoy log that say a wasm VM failed (see
// vmFailure). The plugin's own log lines ("wasm log …") only count when they
// are the Go runtime's dying words, not the filter's reports of failed calls.
func VMFailures(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if vmFailure.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}
