// Package config parses and validates the plugin configuration (JSON) once, at
// plugin start. The rest of the filter trusts a Config and never re-checks it.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/jsonlimit"
)

// The DPoP scheme's place (the dpop key).
const (
	DPoPOff      = "off"
	DPoPAllowed  = "allowed"
	DPoPRequired = "required"
)

// DPoPAlgorithms are the proof algorithms the filter can verify (ES* and
// RS* with Envoy's verify_signature, PS* and EdDSA in the module);
// DefaultDPoPAlgs those accepted unless dpop_algs says otherwise.
var (
	DPoPAlgorithms  = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"}
	DefaultDPoPAlgs = []string{"ES256", "PS256", "RS256", "EdDSA"}
)

// Bounds of the DPoP keys.
const (
	DefaultDPoPIATWindow        = 60 * time.Second
	MaxDPoPIATWindow            = 10 * time.Minute
	DefaultDPoPReplayMaxEntries = 10_000
	minDPoPNonceSecret          = 32
)

// Where the client certificate of a request comes from.
const (
	// CertificateFromConnection: the TLS connection Envoy terminated.
	CertificateFromConnection = "connection"
	// CertificateFromXFCC: the Hash of the last element of
	// x-forwarded-client-cert, set by a TLS terminator in front.
	CertificateFromXFCC = "x-forwarded-client-cert"
)

// How the filter authenticates to the identity server (client_auth, the
// RFC 7591 token_endpoint_auth_method names).
const (
	// ClientSecretBasic: HTTP Basic with client_id and client_secret
	// (RFC 6749 §2.3.1).
	ClientSecretBasic = "client_secret_basic"
	// ClientTLS: mutual TLS with the certificate of the Envoy cluster that
	// reaches the identity server, and client_id in the request body
	// (RFC 8705 §2); no secret.
	ClientTLS = "tls_client_auth"
)

// Response types the introspection endpoint may be asked for.
const (
	// ResponseTypeJWT is Curity's phantom token response: the body is the JWT.
	ResponseTypeJWT = "application/jwt"
	// ResponseTypeIntrospectionJWT is RFC 9701: a JWT whose token_introspection
	// claim holds the RFC 7662 answer.
	ResponseTypeIntrospectionJWT = "application/token-introspection+jwt"
)

// Config is the validated plugin configuration.
type Config struct {
	// The fields a cache hit reads come first, in one cache line.

	// PlainHits is true when a request's Authorization value alone decides
	// a hit on the worker's copy of the cache, before anything else of the
	// request is read: the plugin's configuration (never a rule's) has no
	// route rules, no route metadata, no claim or stale headers to strip, no
	// DPoP, no certificate binding required, and the JWT goes upstream in
	// Authorization. The filter is enabled and caches. See plainHits.
	PlainHits bool
	// CacheNamespace separates the cache entries of configurations that must
	// never share answers: another endpoint, cluster, client, response type
	// or JWT member.
	CacheNamespace string
	RequiredScopes []string // enforced on every request

	// IntrospectionURL is the endpoint as configured.
	IntrospectionURL string
	// Cluster is the Envoy cluster that reaches the introspection endpoint.
	Cluster string
	// Authority and Path are derived from introspection_url.
	Authority string
	Path      string

	ClientID     string
	ClientSecret string
	// ClientAuth is how the filter authenticates to the identity server:
	// ClientSecretBasic, or ClientTLS (the cluster's client certificate,
	// with client_id in the body; no secret).
	ClientAuth string

	Realm        string
	Scopes       []string // advertised in the challenge
	ResponseType string
	// JWTMember, when set, names the member of a JSON introspection answer
	// that carries the JWT (Keycloak "jwt", Curity's JSON mode
	// "phantom_token"); the answer is used only when its "active" is true.
	JWTMember string

	Timeout        time.Duration
	MaxJWTSize     int
	MaxTokenLength int
	// UpstreamHeader is the lower-case name of the header that carries the JWT
	// to the upstream.
	UpstreamHeader string
	// ToAuthorization is UpstreamHeader == "authorization", decided once
	// (Parse): a hit then compares no strings.
	ToAuthorization bool

	CacheEnabled            bool
	CacheMaxTTL             time.Duration
	CacheMaxEntries         int
	CacheIgnoreCacheControl bool
	// CacheNegativeTTL is how long an inactive verdict is cached; 0 (the
	// default) caches none.
	CacheNegativeTTL time.Duration

	// StaleIfError is how long past its cache lifetime an active answer
	// may be served when the call for its token fails for a reason that is
	// not the identity server's verdict; 0 (the default): never.
	StaleIfError time.Duration
	// StaleHeader, when set, marks a request admitted with a stale answer
	// to the upstream (value "1"); it is one of StripHeaders.
	StaleHeader string
	// RefreshAhead is the last part of an answer's cache lifetime in which
	// a hit starts a refresh; 0 (the default): never.
	RefreshAhead float64

	// MaxInFlight bounds the introspections one VM has under way; a request
	// that would need one more is answered 503 with Retry-After.
	MaxInFlight int

	// ForwardCORSPreflight lets CORS preflight requests through without a token.
	ForwardCORSPreflight bool
	// Enabled false turns the filter into a pass-through for this configuration.
	Enabled bool

	// ClaimHeaders are the headers this policy gives the upstream from the
	// claims of the JWT it forwards.
	ClaimHeaders []ClaimHeader

	// DPoP is the DPoP scheme's place: DPoPOff, DPoPAllowed or DPoPRequired.
	DPoP string
	// DPoPAlgs are the signature algorithms accepted in proofs.
	DPoPAlgs []string
	// DPoPIATWindow is how far a proof's iat may be from now, either side,
	// and how long its jti is remembered.
	DPoPIATWindow time.Duration
	// DPoPNonce requires a server nonce in proofs.
	DPoPNonce bool
	// DPoPKeepHeader forwards the DPoP header upstream.
	DPoPKeepHeader bool
	// DPoPNonceSecret is the key nonces are made with (the plugin's, from
	// dpop_nonce_secret_env); nil: a random key of this proxy's.
	DPoPNonceSecret []byte
	// DPoPReplayMaxEntries bounds the jti values remembered.
	DPoPReplayMaxEntries int

	// RequireCertificateBound refuses a token without cnf.x5t#S256.
	RequireCertificateBound bool
	// ClientCertificateSource is where the client certificate's SHA-256
	// comes from: CertificateFromConnection or CertificateFromXFCC.
	ClientCertificateSource string

	// The plugin's own, the same in every rule's Config:

	// Routes are the route rules, in order (the first that matches applies).
	// A rule's Config is the top level with the rule's keys applied.
	Routes []Rule
	// RouteMetadata reads filter_metadata.phantom_token of the route and
	// its virtual host.
	RouteMetadata bool
	// RejectClaimHeaders answers 400 to a request that carries a claim
	// header, instead of removing it.
	RejectClaimHeaders bool
	// ClaimPaths are the distinct claims of every claim_headers list (a
	// ClaimHeader names one by its index); StripHeaders every header they
	// give, removed from every request.
	ClaimPaths   [][]string
	StripHeaders []string
	// TraceHeaders are the request headers (lower-case) copied from the
	// request that starts an introspection call to that call; nil: none.
	TraceHeaders []string
}

// Defaults, chosen to be safe rather than permissive.
const (
	DefaultRealm           = "api"
	DefaultTimeout         = 5 * time.Second
	DefaultMaxJWTSize      = 16 * 1024
	DefaultMaxTokenLength  = 4096
	DefaultUpstreamHeader  = "authorization"
	DefaultCacheMaxTTL     = 300 * time.Second
	DefaultCacheMaxEntries = 10000
	DefaultMaxInFlight     = 100

	// MaxCacheNegativeTTL bounds cache_negative_ttl: a revoked token's
	// verdict is never kept long, and neither is a mistaken one.
	MaxCacheNegativeTTL = 60 * time.Second

	// MaxStaleIfError bounds stale_if_error: a revoked token's JWT is
	// served at most this much longer while the identity server fails.
	MaxStaleIfError = 10 * time.Minute

	// MaxRefreshAhead bounds refresh_ahead: a refresh starts in the last
	// half of an answer's life at the earliest.
	MaxRefreshAhead = 0.5

	// MaxCacheEntries bounds cache_max_entries.
	MaxCacheEntries = 1_000_000

	// MaxCacheMaxTTL bounds cache_max_ttl: a revoked token's JWT is served
	// from the cache at most this long (often far less: max-age, exp).
	MaxCacheMaxTTL = 24 * time.Hour

	maxTimeout    = 300 * time.Second
	maxInFlight   = 10000
	maxSizeConfig = 1 << 24 // 16 MiB: larger JWTs or tokens are a mistake
)

// Error names the configuration key and what is wrong with it.
type Error struct {
	Key     string
	Problem string
	// In names what was parsed when it is not the plugin configuration:
	// "route metadata" or "virtual host metadata".
	In string
}

func (e *Error) Error() string {
	in := e.In
	if in == "" {
		in = "plugin configuration"
	}
	if e.Key == "" {
		return "invalid " + in + ": " + e.Problem
	}
	return "invalid " + in + ": " + strconv.Quote(e.Key) + " " + e.Problem
}

// fail names the key and the problem. The problem is built by the caller,
// with strconv.Quote for anything taken from the configuration.
func fail(key, problem string) error {
	return &Error{Key: key, Problem: problem}
}

// Where a key may appear: the top level, a route rule, route metadata.
type place int

const (
	topLevel place = iota
	inRule
	inMetadata
)

// Keys by what they set. policyKeys are the request policy, serverKeys the
// identity server: a rule may set both, route metadata only the policy
// without claim_headers (every claim header must be known at start, to be
// removed from every request). pluginKeys are the plugin's, top level only.
var (
	policyKeys = []string{"enabled", "realm", "scopes", "required_scopes", "upstream_header",
		"require_certificate_bound", "client_certificate_source",
		"dpop", "dpop_algs", "dpop_iat_window", "dpop_nonce", "dpop_keep_header"}
	serverKeys = []string{"introspection_url", "cluster", "client_id", "client_secret", "client_secret_env", "client_auth",
		"response_type", "jwt_member", "timeout"}
	pluginKeys = []string{"max_jwt_size", "max_token_length", "cache", "cache_max_ttl", "cache_max_entries",
		"cache_ignore_cache_control", "cache_negative_ttl", "max_in_flight", "forward_cors_preflight",
		"routes", "route_metadata", "reject_claim_headers", "dpop_nonce_secret_env", "dpop_replay_max_entries",
		"stale_if_error", "stale_header", "refresh_ahead", "trace_headers"}
	ruleKeys = []string{"route", "route_prefix"}
)

// known lists the keys accepted at each place; anything else is rejected, so
// a typo never silently falls back to a default.
var known = [3]map[string]bool{
	topLevel:   keySet(policyKeys, claimKeys, serverKeys, pluginKeys),
	inRule:     keySet(policyKeys, claimKeys, serverKeys, ruleKeys),
	inMetadata: keySet(policyKeys),
}

// claimKeys may not be set by route metadata: every claim header must be
// known at start, to be removed from every request.
var claimKeys = []string{"claim_headers"}

func keySet(lists ...[]string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, k := range l {
			m[k] = true
		}
	}
	return m
}

// Parse validates the plugin configuration. getenv reads the VM's environment
// (for client_secret_env).
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fail("", "is empty: introspection_url, cluster, client_id and a client secret are required")
	}
	root, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	c := &Config{
		ClientAuth: ClientSecretBasic, Realm: DefaultRealm, ResponseType: ResponseTypeJWT, Timeout: DefaultTimeout, Enabled: true,
		UpstreamHeader: DefaultUpstreamHeader, ClientCertificateSource: CertificateFromConnection,
		DPoP: DPoPOff, DPoPAlgs: DefaultDPoPAlgs, DPoPIATWindow: DefaultDPoPIATWindow,
		TraceHeaders: DefaultTraceHeaders,
	}
	s := &parseState{getenv: getenv, secrets: secretsOf(root, getenv)}
	if err := s.apply(root, c, topLevel, ""); err != nil {
		return nil, err
	}
	if c.Routes, err = s.rules(root.Get("routes"), c); err != nil {
		return nil, err
	}
	if c.StaleHeader != "" {
		if err := s.checkStaleHeader(c); err != nil {
			return nil, err
		}
		s.strip = append(s.strip, c.StaleHeader)
	}
	c.ClaimPaths, c.StripHeaders = s.paths, s.strip
	for _, r := range c.Routes {
		r.Config.ClaimPaths, r.Config.StripHeaders = s.paths, s.strip
	}
	c.PlainHits = plainHits(c)
	return c, nil
}

// plainHits is whether a hit under the plugin's configuration c needs
// nothing of the request but its Authorization value: which route it is on,
// headers to strip or add, a DPoP proof or a client certificate would each
// need more. A token's own binding and the JWT's checks are the cache's and
// the JWT's to say, on every hit.
func plainHits(c *Config) bool {
	return c.Enabled && c.CacheEnabled && len(c.Routes) == 0 && !c.RouteMetadata &&
		len(c.StripHeaders) == 0 && len(c.ClaimHeaders) == 0 && c.StaleHeader == "" &&
		c.DPoP == DPoPOff && !c.RequireCertificateBound && c.ToAuthorization
}

// checkStaleHeader checks that stale_header is a header the filter may set
// and that nothing else of the configuration sets.
func (s *parseState) checkStaleHeader(c *Config) error {
	name := c.StaleHeader
	if problem := checkUpstreamHeader(name); problem != "" {
		return fail("stale_header", problem)
	}
	if name == "authorization" || slices.Contains(s.strip, name) {
		return fail("stale_header", "must not be "+strconv.Quote(name)+": the client's credentials or a claim header travel there")
	}
	return nil
}

// parseObject checks that data is one JSON object, within the nesting bound
// (gjson recurses: deep nesting must never trap the VM, whoever wrote it).
func parseObject(data []byte) (gjson.Result, error) {
	if !jsonlimit.Within(data, jsonlimit.MaxDepth) {
		return gjson.Result{}, fail("", "nests arrays or objects deeper than "+strconv.Itoa(jsonlimit.MaxDepth)+" levels")
	}
	if !utf8.Valid(data) {
		return gjson.Result{}, fail("", "is not valid UTF-8")
	}
	if !gjson.ValidBytes(data) {
		return gjson.Result{}, fail("", "is not valid JSON")
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return gjson.Result{}, fail("", "must be a JSON object")
	}
	return root, nil
}

// parseState is what parsing the whole configuration collects.
type parseState struct {
	getenv  func(string) string
	secrets []string
	// paths are the distinct claim paths of every claim_headers list, and
	// strip every header they name.
	paths [][]string
	strip []string
}

// apply reads the keys obj sets at place into c, which holds the values
// they override, and checks the result. prefix names obj in errors
// ("routes[2].").
func (s *parseState) apply(obj gjson.Result, c *Config, where place, prefix string) error {
	in := ""
	if where == inMetadata {
		in, prefix = prefix, ""
	}
	seen := map[string]bool{}
	var err error
	obj.ForEach(func(k, _ gjson.Result) bool {
		switch key := k.String(); {
		case !known[where][key]:
			err = &Error{Key: prefix + shownKey(key, s.secrets), Problem: "is not a known key" + notHere(key, where), In: in}
		case seen[key]:
			err = &Error{Key: prefix + key, Problem: "appears more than once", In: in}
		default:
			seen[key] = true
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	p := parser{get: func(key string) gjson.Result { return obj.Get(gjson.Escape(key)) }, prefix: prefix, in: in}
	has := func(key string) bool { return seen[key] }

	// The identity server. At the top level, and in a rule that names
	// another server, it is described whole: nothing of another server's
	// carries over, so its credentials never go to this one.
	newServer := where == topLevel || has("introspection_url")
	if newServer {
		c.IntrospectionURL = p.requiredString("introspection_url")
		c.Cluster = p.requiredString("cluster")
		c.ClientID = p.requiredString("client_id")
		c.ResponseType, c.JWTMember, c.Timeout, c.ClientSecret, c.ClientAuth = ResponseTypeJWT, "", DefaultTimeout, "", ClientSecretBasic
	} else {
		c.Cluster = p.optionalString("cluster", c.Cluster)
		c.ClientID = p.optionalString("client_id", c.ClientID)
	}
	if auth := p.optionalString("client_auth", c.ClientAuth); auth == ClientSecretBasic || auth == ClientTLS {
		c.ClientAuth = auth
	} else {
		p.setErr(p.fail("client_auth", "must be "+strconv.Quote(ClientSecretBasic)+" or "+strconv.Quote(ClientTLS)))
	}
	c.ResponseType = p.optionalString("response_type", c.ResponseType)
	c.JWTMember = p.optionalString("jwt_member", c.JWTMember)
	c.Timeout = p.duration("timeout", c.Timeout)
	secret := p.optionalString("client_secret", "")
	secretEnv := p.optionalString("client_secret_env", "")

	c.Enabled = p.boolean("enabled", c.Enabled)
	c.Realm = p.optionalString("realm", c.Realm)
	if has("scopes") {
		c.Scopes = p.scopeList("scopes")
	}
	if has("required_scopes") {
		c.RequiredScopes = p.scopeList("required_scopes")
	}
	c.UpstreamHeader = strings.ToLower(p.optionalString("upstream_header", c.UpstreamHeader))
	c.RequireCertificateBound = p.boolean("require_certificate_bound", c.RequireCertificateBound)
	if has("client_certificate_source") {
		switch src := p.optionalString("client_certificate_source", ""); src {
		case CertificateFromConnection, CertificateFromXFCC:
			c.ClientCertificateSource = src
		default:
			p.setErr(p.fail("client_certificate_source", "must be "+strconv.Quote(CertificateFromConnection)+" or "+strconv.Quote(CertificateFromXFCC)))
		}
	}

	if has("dpop") {
		switch mode := p.optionalString("dpop", ""); mode {
		case DPoPOff, DPoPAllowed, DPoPRequired:
			c.DPoP = mode
		default:
			p.setErr(p.fail("dpop", "must be \"off\", \"allowed\" or \"required\""))
		}
	}
	if has("dpop_algs") {
		c.DPoPAlgs = p.algList("dpop_algs")
	}
	c.DPoPIATWindow = p.duration("dpop_iat_window", c.DPoPIATWindow)
	c.DPoPNonce = p.boolean("dpop_nonce", c.DPoPNonce)
	c.DPoPKeepHeader = p.boolean("dpop_keep_header", c.DPoPKeepHeader)

	if where == topLevel {
		c.MaxJWTSize = p.size("max_jwt_size", DefaultMaxJWTSize)
		c.DPoPReplayMaxEntries = p.count("dpop_replay_max_entries", DefaultDPoPReplayMaxEntries)
		if name := p.optionalString("dpop_nonce_secret_env", ""); name != "" {
			if c.DPoPNonceSecret = []byte(s.getenv(name)); len(c.DPoPNonceSecret) < minDPoPNonceSecret {
				p.setErr(p.fail("dpop_nonce_secret_env", "names environment variable "+strconv.Quote(name)+", which must hold at least "+strconv.Itoa(minDPoPNonceSecret)+" bytes in the VM"))
			}
		}
		c.MaxTokenLength = p.count("max_token_length", DefaultMaxTokenLength)
		c.CacheEnabled = p.boolean("cache", true)
		c.CacheMaxTTL = p.duration("cache_max_ttl", DefaultCacheMaxTTL)
		c.CacheMaxEntries = p.count("cache_max_entries", DefaultCacheMaxEntries)
		c.CacheIgnoreCacheControl = p.boolean("cache_ignore_cache_control", false)
		if has("cache_negative_ttl") {
			c.CacheNegativeTTL = p.duration("cache_negative_ttl", 0)
		}
		if has("stale_if_error") {
			c.StaleIfError = p.duration("stale_if_error", 0)
		}
		c.StaleHeader = strings.ToLower(p.optionalString("stale_header", ""))
		c.RefreshAhead = p.fraction("refresh_ahead", MaxRefreshAhead, "0.5")
		c.MaxInFlight = p.count("max_in_flight", DefaultMaxInFlight)
		c.ForwardCORSPreflight = p.boolean("forward_cors_preflight", true)
		c.RouteMetadata = p.boolean("route_metadata", false)
		c.RejectClaimHeaders = p.boolean("reject_claim_headers", false)
		c.TraceHeaders = p.traceHeaders("trace_headers", c.TraceHeaders)
	}
	if p.err != nil {
		return p.err
	}

	switch {
	case where == inMetadata:
	case c.ClientAuth == ClientTLS && secret != "":
		return p.fail("client_secret", notWithTLS)
	case c.ClientAuth == ClientTLS && secretEnv != "":
		return p.fail("client_secret_env", notWithTLS)
	case c.ClientAuth == ClientTLS:
		c.ClientSecret = ""
	case secret != "" && secretEnv != "":
		return p.fail("client_secret_env", "cannot be combined with client_secret: give one of them")
	case secretEnv != "":
		if c.ClientSecret = s.getenv(secretEnv); c.ClientSecret == "" {
			return p.fail("client_secret_env", "names environment variable "+strconv.Quote(secretEnv)+", which is not set or empty in the VM")
		}
	case secret != "":
		c.ClientSecret = secret
	case newServer:
		return p.fail("client_secret", "is required (or client_secret_env naming a VM environment variable)")
	case has("client_id"):
		return p.fail("client_secret", "is required with client_id in a rule (or client_secret_env): a rule's client has its own secret")
	}
	if where != inMetadata && c.ClientAuth == ClientSecretBasic && c.ClientSecret == "" {
		return p.fail("client_secret", "is required with client_auth "+strconv.Quote(ClientSecretBasic)+" (or client_secret_env)")
	}
	if where == inRule && !has("client_id") && (secret != "" || secretEnv != "") {
		return p.fail("client_id", "is required with a client secret in a rule")
	}
	if newServer {
		var err error
		if c.Authority, c.Path, err = splitURL(c.IntrospectionURL); err != nil {
			return p.fail("introspection_url", err.Error())
		}
	}
	if has("claim_headers") {
		var err error
		if c.ClaimHeaders, err = s.claimHeaders(obj.Get("claim_headers"), prefix); err != nil {
			return err
		}
	}
	if err := c.check(&p); err != nil {
		return err
	}
	if where == topLevel {
		if err := c.checkPlugin(&p); err != nil {
			return err
		}
	}
	c.CacheNamespace = namespace(c)
	c.ToAuthorization = c.UpstreamHeader == DefaultUpstreamHeader
	return nil
}

const notWithTLS = "is not used with client_auth \"" + ClientTLS + "\": the cluster's client certificate authenticates the filter"

// notHere says why a key known elsewhere is refused at this place.
func notHere(key string, where place) string {
	switch {
	case where == inRule && known[topLevel][key]:
		return " in a rule: it is the plugin's, set at the top level"
	case where == inMetadata && known[inRule][key]:
		return " in route metadata: set it in the plugin configuration"
	}
	return ""
}

// check checks what a policy must satisfy wherever its keys came from.
func (c *Config) check(p *parser) error {
	if strings.ContainsAny(c.Realm, "\"\\") || hasControl(c.Realm) {
		return p.fail("realm", "must not contain quotes, backslashes or control characters")
	}
	if c.ResponseType != ResponseTypeJWT && c.ResponseType != ResponseTypeIntrospectionJWT {
		return p.fail("response_type", "must be "+strconv.Quote(ResponseTypeJWT)+" or "+strconv.Quote(ResponseTypeIntrospectionJWT))
	}
	switch c.JWTMember {
	case "":
	case "active", "exp", "scope", "token_introspection":
		return p.fail("jwt_member", "must not be "+strconv.Quote(c.JWTMember)+", a claim with its own meaning")
	default:
		if c.ResponseType != ResponseTypeJWT {
			// RFC 9701 answers are JWTs, never JSON with a member.
			return p.fail("jwt_member", "needs response_type "+strconv.Quote(ResponseTypeJWT))
		}
	}
	if c.Timeout > maxTimeout || c.Timeout < time.Millisecond {
		return p.fail("timeout", "must be between 1ms and "+maxTimeout.String())
	}
	if c.DPoPIATWindow > MaxDPoPIATWindow {
		return p.fail("dpop_iat_window", "must be at most "+MaxDPoPIATWindow.String())
	}
	if err := checkUpstreamHeader(c.UpstreamHeader); err != "" {
		return p.fail("upstream_header", err)
	}
	if c.UpstreamHeader == c.StaleHeader {
		return p.fail("stale_header", "must differ from upstream_header "+strconv.Quote(c.UpstreamHeader))
	}
	for _, h := range c.ClaimHeaders {
		if h.Header == c.UpstreamHeader {
			return p.fail("claim_headers", "names "+strconv.Quote(h.Header)+", the upstream_header that carries the JWT")
		}
	}
	return nil
}

// checkPlugin checks the plugin's own keys.
func (c *Config) checkPlugin(p *parser) error {
	switch {
	case c.CacheMaxTTL < time.Second:
		return p.fail("cache_max_ttl", "must be at least 1s (use \"cache\": false to turn caching off)")
	case c.CacheMaxTTL > MaxCacheMaxTTL:
		return p.fail("cache_max_ttl", "must be at most "+MaxCacheMaxTTL.String())
	case c.CacheNegativeTTL > MaxCacheNegativeTTL:
		return p.fail("cache_negative_ttl", "must be at most "+MaxCacheNegativeTTL.String())
	case c.StaleIfError > MaxStaleIfError:
		return p.fail("stale_if_error", "must be at most "+MaxStaleIfError.String())
	case c.StaleIfError > 0 && !c.CacheEnabled:
		return p.fail("stale_if_error", "needs the cache (\"cache\": true)")
	case c.RefreshAhead > 0 && !c.CacheEnabled:
		return p.fail("refresh_ahead", "needs the cache (\"cache\": true)")
	case c.StaleHeader != "" && c.StaleIfError == 0:
		return p.fail("stale_header", "needs stale_if_error")
	case c.MaxInFlight > maxInFlight:
		return p.fail("max_in_flight", "must be at most "+strconv.Itoa(maxInFlight))
	case c.DPoPReplayMaxEntries > MaxCacheEntries:
		return p.fail("dpop_replay_max_entries", "must be at most "+strconv.Itoa(MaxCacheEntries))
	case c.CacheMaxEntries > MaxCacheEntries:
		return p.fail("cache_max_entries", "must be at most "+strconv.Itoa(MaxCacheEntries)+" (every VM creates its slots when it starts)")
	}
	return nil
}

// secretsOf lists the client secrets a configuration holds (inline, or
// through a VM environment variable), at the top level and in its rules.
func secretsOf(root gjson.Result, getenv func(string) string) []string {
	var secrets []string
	add := func(obj gjson.Result) {
		if v := obj.Get("client_secret"); v.Type == gjson.String && v.Str != "" {
			secrets = append(secrets, v.Str)
		}
		if v := obj.Get("client_secret_env"); v.Type == gjson.String && v.Str != "" && getenv != nil {
			if s := getenv(v.Str); s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	add(root)
	if v := root.Get("dpop_nonce_secret_env"); v.Type == gjson.String && v.Str != "" && getenv != nil {
		if s := getenv(v.Str); s != "" {
			secrets = append(secrets, s)
		}
	}
	if routes := root.Get("routes"); routes.IsArray() {
		for i, r := range routes.Array() {
			if i >= MaxRoutes {
				break
			}
			add(r)
		}
	}
	return secrets
}

// shownKey is how an unknown key is named in an error: as it is, unless it
// holds a client secret (a secret pasted where a key goes must not reach
// the log).
func shownKey(key string, secrets []string) string {
	for _, s := range secrets {
		if s != "" && strings.Contains(key, s) {
			return "(a key that holds the client secret)"
		}
	}
	return key
}

// parser collects the first error so Parse reads as a list of keys.
type parser struct {
	get func(string) gjson.Result
	// prefix names the object in errors: "" or "routes[2].".
	prefix string
	// in is Error.In for what is parsed.
	in  string
	err error
}

// fail is the error for key of this object.
func (p *parser) fail(key, problem string) error {
	return &Error{Key: p.prefix + key, Problem: problem, In: p.in}
}

func (p *parser) setErr(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *parser) optionalString(key, def string) string {
	v := p.get(key)
	if !v.Exists() {
		return def
	}
	if v.Type != gjson.String {
		p.setErr(p.fail(key, "must be a string"))
		return def
	}
	if v.Str == "" {
		p.setErr(p.fail(key, "must not be empty"))
	}
	return v.Str
}

func (p *parser) requiredString(key string) string {
	if !p.get(key).Exists() {
		p.setErr(p.fail(key, "is required"))
		return ""
	}
	return p.optionalString(key, "")
}

func (p *parser) boolean(key string, def bool) bool {
	v := p.get(key)
	switch {
	case !v.Exists():
		return def
	case v.Type == gjson.True:
		return true
	case v.Type == gjson.False:
		return false
	}
	p.setErr(p.fail(key, "must be true or false"))
	return def
}

// scopeList accepts "a b c" (scopes separated by single spaces, RFC 6749
// §3.3) or ["a", "b", "c"] (one scope per string). An empty list or an empty
// entry is an error: it would enforce or advertise nothing, silently.
func (p *parser) scopeList(key string) []string {
	v := p.get(key)
	var scopes []string
	switch {
	case !v.Exists():
		return nil
	case v.Type == gjson.String:
		scopes = strings.Split(v.Str, " ")
	case v.IsArray():
		for _, s := range v.Array() {
			if s.Type != gjson.String {
				p.setErr(p.fail(key, "must be a string or an array of strings"))
				return nil
			}
			scopes = append(scopes, s.Str)
		}
	default:
		p.setErr(p.fail(key, "must be a string or an array of strings"))
		return nil
	}
	if len(scopes) == 0 {
		p.setErr(p.fail(key, "must not be empty: leave the key out instead"))
		return nil
	}
	for _, s := range scopes {
		switch {
		case s == "":
			p.setErr(p.fail(key, "has an empty scope (an empty string, or a leading, trailing or double space)"))
			return nil
		case !isScopeToken(s):
			p.setErr(p.fail(key, "contains "+strconv.Quote(s)+", which is not an RFC 6749 scope token"))
			return nil
		}
	}
	return scopes
}

// algList reads proof algorithms: "ES256 EdDSA" or ["ES256", "EdDSA"], each
// one the filter can verify (never "none", never an HMAC).
func (p *parser) algList(key string) []string {
	algs := p.scopeList(key)
	for _, a := range algs {
		if !slices.Contains(DPoPAlgorithms, a) {
			p.setErr(p.fail(key, "has "+strconv.Quote(a)+": the algorithms are "+strings.Join(DPoPAlgorithms, ", ")))
			return nil
		}
	}
	return algs
}

// duration accepts a Go duration string ("2s", "500ms") or a JSON number of
// seconds (Istio's pluginConfig turns every number into a float).
func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := p.get(key)
	switch {
	case !v.Exists():
		return def
	case v.Type == gjson.Number:
		if v.Num > 0 && v.Num <= math.MaxInt32 {
			return time.Duration(v.Num * float64(time.Second))
		}
	case v.Type == gjson.String:
		if d, err := time.ParseDuration(v.Str); err == nil && d > 0 {
			return d
		}
	}
	p.setErr(p.fail(key, "must be a positive duration such as \"2s\" or a number of seconds"))
	return def
}

// fraction reads a number above 0 and at most limit, written limitText (0
// when absent). strconv's float formatting would add 60 kB to the module.
func (p *parser) fraction(key string, limit float64, limitText string) float64 {
	v := p.get(key)
	if !v.Exists() {
		return 0
	}
	if v.Type != gjson.Number || !(v.Num > 0 && v.Num <= limit) {
		p.setErr(p.fail(key, "must be a number above 0 and at most "+limitText+" (the last part of an answer's cache lifetime)"))
		return 0
	}
	return v.Num
}

// count accepts a positive whole number of things (entries, calls,
// characters), as a JSON number (100 or 100.0, Istio's floats) or a string of
// decimal digits ("100"). Unlike a size it takes no unit suffix: "1k" entries
// is a mistake for 1,000 or 1,024, not a number.
func (p *parser) count(key string, def int) int {
	return p.whole(key, def, parseDigits, "without a unit")
}

// size accepts a positive whole number, as a JSON number (2048 or 2048.0) or a
// string with an optional binary suffix ("16KiB", "1MiB", "16k").
func (p *parser) size(key string, def int) int {
	return p.whole(key, def, parseSize, "optionally with a KiB or MiB suffix")
}

// whole reads a positive whole number up to maxSizeConfig, as a JSON number or
// a string that parse reads; form says which strings, in the error.
func (p *parser) whole(key string, def int, parse func(string) (float64, bool), form string) int {
	v := p.get(key)
	if !v.Exists() {
		return def
	}
	n, ok := 0.0, false
	switch v.Type {
	case gjson.Number:
		n, ok = v.Num, true
	case gjson.String:
		n, ok = parse(v.Str)
	}
	if !ok || n < 1 || n > maxSizeConfig || n != math.Trunc(n) {
		p.setErr(p.fail(key, "must be a whole number between 1 and "+strconv.Itoa(maxSizeConfig)+", "+form))
		return def
	}
	return int(n)
}

// parseDigits reads a string of decimal digits.
func parseDigits(s string) (float64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	u, err := strconv.ParseUint(s, 10, 32)
	return float64(u), err == nil
}

func parseSize(s string) (float64, bool) {
	mult := 1.0
	lower := strings.ToLower(strings.TrimSpace(s))
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"kib", 1024}, {"kb", 1024}, {"k", 1024}, {"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20}} {
		if strings.HasSuffix(lower, u.suffix) {
			lower, mult = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(lower, 10, 32)
	return float64(n) * mult, err == nil
}

// namespace is a short digest of everything that makes one configuration's
// cache entries differ from another's: what the answers are (endpoint,
// cluster, client, response type, JWT member) and what may be stored and for
// how long (the caching policy, the JWT size bound, the table's geometry). Two
// configurations share entries only when they would have stored the same
// ones; the per-request checks (scopes, exp) run on every hit anyway.
func namespace(c *Config) string {
	h := sha256.Sum256([]byte(strings.Join([]string{c.IntrospectionURL, c.Cluster, c.ClientID, c.ResponseType, c.JWTMember,
		strconv.Itoa(c.MaxJWTSize), c.CacheMaxTTL.String(), strconv.FormatBool(c.CacheIgnoreCacheControl),
		c.CacheNegativeTTL.String(), strconv.Itoa(c.CacheMaxEntries)}, "\x00")))
	return hex.EncodeToString(h[:8])
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// isScopeToken: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3).
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return s != ""
}

// checkUpstreamHeader returns what is wrong with the (lower-case) name of the
// header that carries the JWT upstream, or "". Headers that proxies consume
// hop by hop, or that frame or route the request, would carry the JWT
// nowhere, or corrupt the request.
func checkUpstreamHeader(name string) string {
	switch {
	case strings.HasPrefix(name, ":"):
		return "must not be a pseudo-header"
	case !isToken(name):
		return "must be an HTTP header name"
	case hopByHop[name] || strings.HasPrefix(name, "proxy-"):
		return "must not be " + strconv.Quote(name) + ", a hop-by-hop header"
	case name == "host" || name == "content-length":
		return "must not be " + strconv.Quote(name) + ", which frames or routes the request"
	}
	return ""
}

// hopByHop are the hop-by-hop headers of RFC 9110 §7.6.1 (and RFC 2616's
// list, which proxies still honour); any proxy-* header counts too.
var hopByHop = map[string]bool{
	"connection": true, "te": true, "transfer-encoding": true, "upgrade": true,
	"keep-alive": true, "trailer": true,
}

// isToken: an RFC 9110 token, the syntax of a header name.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
