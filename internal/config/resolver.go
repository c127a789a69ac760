package config

import "encoding/binary"

// Resolver finds the configuration of a request from what Envoy says of its
// route: the route's name, and, with route_metadata, the route's and its
// virtual host's metadata. Each worker resolves a route once and keeps the
// result (MaxResolved routes, then it starts over): a request on a known
// route costs one map lookup.
type Resolver struct {
	top *Config
	// decode reads the filter_metadata.phantom_token object out of what
	// Envoy returns for a metadata property (a serialised Metadata), as
	// JSON; found is false when it has none.
	decode func(raw []byte) (text []byte, found bool, err error)
	memo   map[string]Resolved
	key    []byte
}

// Resolved is a route's configuration, or why its metadata is refused (the
// route's requests are then answered 500).
type Resolved struct {
	Config *Config
	Err    error
}

// MaxResolved bounds the routes a Resolver keeps.
const MaxResolved = 1024

// NewResolver is nil for a configuration without routes and without
// route_metadata: it reads nothing of the route.
func NewResolver(top *Config, decode func(raw []byte) ([]byte, bool, error)) *Resolver {
	if len(top.Routes) == 0 && !top.RouteMetadata {
		return nil
	}
	return &Resolver{top: top, decode: decode, memo: map[string]Resolved{}}
}

// Metadata reports whether Resolve needs the route's metadata.
func (r *Resolver) Metadata() bool { return r.top.RouteMetadata }

// Resolve is the configuration for a request on the route named name, with
// the raw vhost and route metadata properties (nil when absent, or when
// Metadata is false). fresh is true when it was worked out now rather than
// remembered: a refusal is logged then, once per route.
func (r *Resolver) Resolve(name, vhost, route []byte) (res Resolved, fresh bool) {
	k := r.key[:0]
	if r.top.RouteMetadata { // lengths first: no two routes share a key
		k = binary.AppendUvarint(k, uint64(len(name)))
		k = binary.AppendUvarint(k, uint64(len(vhost)))
		k = append(k, vhost...)
		k = append(k, route...)
	}
	k = append(k, name...)
	r.key = k
	if res, ok := r.memo[string(k)]; ok {
		return res, false
	}
	res = r.resolve(string(name), vhost, route)
	if len(r.memo) >= MaxResolved {
		clear(r.memo)
	}
	r.memo[string(k)] = res
	return res, true
}

func (r *Resolver) resolve(name string, vhost, route []byte) Resolved {
	c := r.top.ForRoute(name)
	if !r.top.RouteMetadata {
		return Resolved{Config: c}
	}
	var texts [2][]byte
	for i, raw := range [2][]byte{vhost, route} {
		if len(raw) == 0 {
			continue
		}
		text, found, err := r.decode(raw)
		if err != nil {
			in := [2]string{"virtual host metadata", "route metadata"}[i]
			return Resolved{Err: &Error{Problem: "cannot be read: " + err.Error(), In: in}}
		}
		if found {
			texts[i] = text
		}
	}
	c, err := WithMetadata(c, texts[0], texts[1])
	return Resolved{Config: c, Err: err}
}
