package config

import (
	"errors"
	"strconv"
	"strings"
)

// splitURL derives the callout's :authority and :path from the endpoint URL:
// an absolute http or https URL with a host, an optional port (1–65535), no
// user information and no fragment. The path is sent as written, with any
// byte that may not appear raw in a path percent-encoded, and the query, when
// there is one, after it. Written here rather than with net/url, which would
// add 0.3 MB to the module for this one call at start-up.
func splitURL(raw string) (authority, path string, err error) {
	if hasControl(raw) || strings.Contains(raw, " ") {
		return "", "", errors.New("is not a valid URL")
	}
	if strings.Contains(raw, "#") {
		return "", "", errors.New("must not contain a fragment")
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return "", "", errors.New("must be an absolute http or https URL")
	}
	if !strings.HasPrefix(rest, "//") {
		return "", "", errors.New("has no host")
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, rest = rest[:end], rest[end:]
	if strings.Contains(authority, "@") {
		return "", "", errors.New("must not contain user information: use client_id and client_secret")
	}
	if err := checkAuthority(authority); err != nil {
		return "", "", err
	}
	rawPath, query, _ := strings.Cut(rest, "?")
	if path, err = escapePath(rawPath); err != nil {
		return "", "", err
	}
	if !validQuery(query) {
		return "", "", errors.New("has an invalid query: only RFC 3986 query characters and %XX escapes may appear")
	}
	if path == "" {
		path = "/"
	}
	if query != "" {
		path += "?" + query
	}
	return authority, path, nil
}

// checkAuthority accepts host[:port], where host is a registered name or an
// IPv4 address (letters, digits, "-", ".", "_", "~") or an IPv6 address in
// brackets.
func checkAuthority(authority string) error {
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return errors.New("is not a valid URL")
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" && port[0] != ':' {
			return errors.New("is not a valid URL")
		}
		if end == 1 {
			return errors.New("has no host")
		}
		if !isIPv6(host[1:end]) {
			return errors.New("is not a valid URL")
		}
	} else if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i:]
	}
	if host == "" {
		return errors.New("has no host")
	}
	if !strings.HasPrefix(host, "[") {
		for _, c := range []byte(host) {
			if !isAlnum(c) && c != '-' && c != '.' && c != '_' && c != '~' {
				return errors.New("is not a valid URL")
			}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port[1:])
		if err != nil || port[1] == '+' || port[1] == '-' || n < 1 || n > 65535 {
			return errors.New("has an invalid port")
		}
	}
	return nil
}

// isIPv6 accepts an IPv6 address in RFC 4291 §2.2 text form: eight groups of
// one to four hex digits, or fewer with one "::", the last 32 bits possibly
// as a dotted IPv4 address.
func isIPv6(s string) bool {
	head, tail, compressed := strings.Cut(s, "::")
	if strings.Contains(tail, "::") {
		return false
	}
	groups := 0
	for i, part := range [2]string{head, tail} {
		if part == "" {
			continue
		}
		fields := strings.Split(part, ":")
		for j, f := range fields {
			last := i == 1 || !compressed
			if last && j == len(fields)-1 && strings.Contains(f, ".") {
				if !isIPv4(f) {
					return false
				}
				groups += 2
				continue
			}
			if len(f) < 1 || len(f) > 4 || strings.IndexFunc(f, func(r rune) bool { return r > 0x7f || !isHex(byte(r)) }) >= 0 {
				return false
			}
			groups++
		}
	}
	if compressed {
		return groups < 8
	}
	return groups == 8
}

// isIPv4 accepts four decimal octets (0–255, no leading zeros) joined by dots.
func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) > 1 && p[0] == '0' || p[0] == '+' || p[0] == '-' || n > 255 {
			return false
		}
	}
	return true
}

// escapePath percent-encodes the bytes that RFC 3986 does not allow raw in a
// path, and refuses a "%" that does not start an escape.
func escapePath(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errors.New("is not a valid URL")
			}
			b.WriteByte(c)
		case isAlnum(c) || strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
			b.WriteByte(c)
		default:
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String(), nil
}

// validQuery reports whether q is an RFC 3986 query: pchar, "/" and "?",
// where pchar is unreserved, a %XX escape, a sub-delim, ":" or "@". The query
// is sent as written, so anything else (a space, a quote, "<", ">", "\",
// "^", "`", "{", "|", "}", a bad escape, a byte that is not ASCII) would make
// every introspection call fail, or mean something else to the server; it is
// refused at start instead.
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 2
		case isAlnum(c) || strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
