package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Rule is a route rule: the policy for requests on the routes it names.
type Rule struct {
	// Route is the route name, or its prefix when Prefix is set.
	Route  string
	Prefix bool
	// Config is the top-level configuration with the rule's keys applied.
	Config *Config
}

// Matches reports whether the rule applies to the route named name.
func (r Rule) Matches(name string) bool {
	if r.Prefix {
		return strings.HasPrefix(name, r.Route)
	}
	return name == r.Route
}

// Bounds of the route rules and the claim headers.
const (
	MaxRoutes       = 1000
	maxClaimHeaders = 64  // in one list
	maxClaimPaths   = 256 // distinct claims in the whole configuration
	maxClaimDepth   = 8   // names in one claim path
)

// ClaimHeader is a header the upstream gets from a claim of the JWT.
type ClaimHeader struct {
	// Header is the lower-case header name.
	Header string
	// Claim is the claim's index in Config.ClaimPaths.
	Claim int
}

// rules reads the route rules: each is the top level (top) with its keys
// applied.
func (s *parseState) rules(v gjson.Result, top *Config) ([]Rule, error) {
	if !v.Exists() {
		return nil, nil
	}
	if !v.IsArray() {
		return nil, fail("routes", "must be an array of rule objects")
	}
	list := v.Array()
	if len(list) == 0 {
		return nil, nil
	}
	if len(list) > MaxRoutes {
		return nil, fail("routes", "has more than "+strconv.Itoa(MaxRoutes)+" rules")
	}
	rules := make([]Rule, 0, len(list))
	exact := map[string]int{}
	for i, obj := range list {
		prefix := "routes[" + strconv.Itoa(i) + "]."
		if !obj.IsObject() {
			return nil, fail(prefix[:len(prefix)-1], "must be an object")
		}
		r := Rule{}
		name, byPrefix := obj.Get("route"), obj.Get("route_prefix")
		switch {
		case name.Exists() == byPrefix.Exists():
			return nil, fail(prefix[:len(prefix)-1], "must have exactly one of \"route\" and \"route_prefix\"")
		case byPrefix.Exists():
			name, r.Prefix = byPrefix, true
		}
		key := prefix + map[bool]string{false: "route", true: "route_prefix"}[r.Prefix]
		if name.Type != gjson.String || name.Str == "" {
			return nil, fail(key, "must be a non-empty string: an Envoy route name")
		}
		r.Route = name.Str
		if !r.Prefix {
			if j, dup := exact[r.Route]; dup {
				return nil, fail(key, "names route "+strconv.Quote(r.Route)+", as routes["+strconv.Itoa(j)+"] does: this rule would never apply")
			}
			exact[r.Route] = i
		}
		c := *top
		c.Routes = nil
		if err := s.apply(obj, &c, inRule, prefix); err != nil {
			return nil, err
		}
		r.Config = &c
		rules = append(rules, r)
	}
	return rules, nil
}

// claimHeaders reads a claim_headers list: [{"claim": …, "header": …}].
func (s *parseState) claimHeaders(v gjson.Result, prefix string) ([]ClaimHeader, error) {
	key := prefix + "claim_headers"
	if !v.IsArray() {
		return nil, fail(key, "must be an array of {\"claim\": …, \"header\": …} objects")
	}
	list := v.Array()
	if len(list) > maxClaimHeaders {
		return nil, fail(key, "has more than "+strconv.Itoa(maxClaimHeaders)+" entries")
	}
	var out []ClaimHeader
	seen := map[string]bool{}
	for i, e := range list {
		at := key + "[" + strconv.Itoa(i) + "]"
		if !e.IsObject() {
			return nil, fail(at, "must be an object with \"claim\" and \"header\"")
		}
		var err error
		e.ForEach(func(k, _ gjson.Result) bool {
			if k.String() != "claim" && k.String() != "header" {
				err = fail(at+"."+k.String(), "is not a known key (a claim header has \"claim\" and \"header\")")
			}
			return err == nil
		})
		if err != nil {
			return nil, err
		}
		header := e.Get("header")
		if header.Type != gjson.String {
			return nil, fail(at+".header", "must be a string: an HTTP header name")
		}
		name := strings.ToLower(header.Str)
		if problem := checkUpstreamHeader(name); problem != "" {
			return nil, fail(at+".header", problem)
		}
		if name == "authorization" {
			return nil, fail(at+".header", "must not be \"authorization\": the client's credentials travel there")
		}
		if seen[name] {
			return nil, fail(at+".header", "names "+strconv.Quote(name)+" a second time")
		}
		seen[name] = true
		path, problem := claimPath(e.Get("claim"))
		if problem != "" {
			return nil, fail(at+".claim", problem)
		}
		index, err := s.claimIndex(path, at)
		if err != nil {
			return nil, err
		}
		out = append(out, ClaimHeader{Header: name, Claim: index})
		if !slices.Contains(s.strip, name) {
			s.strip = append(s.strip, name)
		}
	}
	return out, nil
}

// claimPath reads a claim: "sub", "address.country" (a dot between names),
// or ["https://example.com/claims", "tenant"] for names with dots.
func claimPath(v gjson.Result) (path []string, problem string) {
	switch {
	case v.Type == gjson.String:
		path = strings.Split(v.Str, ".")
	case v.IsArray():
		for _, n := range v.Array() {
			if n.Type != gjson.String {
				return nil, "must be a claim name, a dotted path, or an array of names"
			}
			path = append(path, n.Str)
		}
	default:
		return nil, "must be a claim name, a dotted path, or an array of names"
	}
	if len(path) == 0 || len(path) > maxClaimDepth {
		return nil, "must have 1 to " + strconv.Itoa(maxClaimDepth) + " names"
	}
	for _, n := range path {
		if n == "" {
			return nil, "has an empty name (a leading, trailing or double dot?)"
		}
	}
	return path, ""
}

// claimIndex is the index of path among the configuration's claims, added
// when new.
func (s *parseState) claimIndex(path []string, at string) (int, error) {
	for i, p := range s.paths {
		if slices.Equal(p, path) {
			return i, nil
		}
	}
	if len(s.paths) == maxClaimPaths {
		return 0, fail(at+".claim", "is one claim more than the "+strconv.Itoa(maxClaimPaths)+" distinct claims a configuration may read")
	}
	s.paths = append(s.paths, path)
	return len(s.paths) - 1, nil
}

// ForRoute is the configuration for a request on the route named name: the
// first rule that matches it, else the top level (which authenticates).
func (c *Config) ForRoute(name string) *Config {
	if name != "" {
		for _, r := range c.Routes {
			if r.Matches(name) {
				return r.Config
			}
		}
	}
	return c
}

// WithMetadata is base with the policy keys of route metadata applied, each
// a JSON object (nil: none): first the virtual host's, then the route's.
func WithMetadata(base *Config, vhost, route []byte) (*Config, error) {
	c := base
	for _, m := range []struct {
		where string
		data  []byte
	}{{"virtual host metadata", vhost}, {"route metadata", route}} {
		if m.data == nil {
			continue
		}
		obj, err := parseObject(m.data)
		if err != nil {
			return nil, &Error{Problem: err.(*Error).Problem, In: m.where}
		}
		next := *c
		s := &parseState{}
		if err := s.apply(obj, &next, inMetadata, m.where); err != nil {
			return nil, err
		}
		c = &next
	}
	return c, nil
}
