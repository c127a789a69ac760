package dpop

import (
	"strconv"
	"strings"
)

// normalizeURI returns an http or https URI without its query and fragment,
// normalised as RFC 3986 §6.2.2 (syntax) and §6.2.3 (scheme) say, so that two
// spellings of one URI compare equal (RFC 9449 §4.3 item 9):
//
//	scheme       lower case; "http" or "https" only
//	authority    no userinfo; host in lower case, a registered name or an IP
//	             literal ([…]) without percent-encoding; port digits only, an
//	             empty or default port (80, 443) dropped, leading zeros too
//	path         empty made "/"; percent-encodings with upper-case hex digits,
//	             those of unreserved characters (A-Z a-z 0-9 - . _ ~) decoded,
//	             bytes that a path may not hold percent-encoded; dot segments
//	             removed (§5.2.4), after the decoding, so "%2E%2E" is ".."
//
// ok is false for anything else: another scheme, no "//", an empty host, a
// broken percent-encoding.
func normalizeURI(s string) (string, bool) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", false
	}
	var defaultPort string
	switch strings.ToLower(scheme) {
	case "http":
		scheme, defaultPort = "http", "80"
	case "https":
		scheme, defaultPort = "https", "443"
	default:
		return "", false
	}
	authority, path := rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, port, ok := splitHostPort(authority)
	if !ok {
		return "", false
	}
	if port, ok = normalizePort(port, defaultPort); !ok {
		return "", false
	}
	path, ok = normalizePath(path)
	if !ok {
		return "", false
	}
	return scheme + "://" + strings.ToLower(host) + port + path, true
}

// splitHostPort splits an authority without userinfo into its host and the
// digits of its port ("" when there are none).
func splitHostPort(authority string) (host, port string, ok bool) {
	host = authority
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", "", false
		}
		host, port = authority[:end+1], authority[end+1:]
		for i := 1; i < end; i++ {
			if c := host[i]; !(isHex(c) || c == ':' || c == '.') {
				return "", "", false
			}
		}
		if end == 1 {
			return "", "", false
		}
		if port != "" {
			if port[0] != ':' {
				return "", "", false
			}
			port = port[1:]
		}
	} else {
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			host, port = authority[:i], authority[i+1:]
		}
		if host == "" {
			return "", "", false
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isUnreserved(c) && !isSubDelim(c) {
				return "", "", false // also '@' (userinfo), '%' and ':'
			}
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", "", false
		}
	}
	return host, port, true
}

// normalizePort returns ":port" without leading zeros, or "" for an empty or
// default port.
func normalizePort(port, defaultPort string) (string, bool) {
	if port == "" {
		return "", true
	}
	port = strings.TrimLeft(port, "0")
	if len(port) > 5 {
		return "", false
	}
	n, err := strconv.Atoi("0" + port)
	if err != nil || n > 65535 {
		return "", false
	}
	if port == defaultPort {
		return "", true
	}
	return ":" + strconv.Itoa(n), true
}

// normalizePath normalises the percent-encoding of an absolute path, then
// removes its dot segments.
func normalizePath(p string) (string, bool) {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteByte(hex[v>>4])
				b.WriteByte(hex[v&15])
			}
		case c == '/' || isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return removeDotSegments(b.String()), true
}

// removeDotSegments removes "." and ".." segments from an absolute path
// (RFC 3986 §5.2.4): "/a/b/../c/./d" is "/a/c/d", "/a/b/.." is "/a/", and
// ".." never climbs above the root.
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := segs[:0]
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			out = append(out, "")
		}
	}
	return "/" + strings.Join(out, "/")
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
