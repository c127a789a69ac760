package main

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

// No answer up to max_jwt_size traps the VM: deeply nested JSON in every
// place the filter reads (a JSON body, a JWT header or payload, an RFC 9701
// payload, a JSON member's JWT) is 502, and the same VM answers the next
// request normally. It runs against the compiled module too, whose stack is
// the one a recursive parser would overflow.
func TestDeepAnswersNeverTrapTheVM(t *testing.T) {
	const maxJWT = 1 << 20
	cfgs := map[string]string{
		"jwt":     withConfig(`,"max_jwt_size":` + strconv.Itoa(maxJWT)),
		"rfc9701": withConfig(`,"max_jwt_size":` + strconv.Itoa(maxJWT) + `,"response_type":"application/token-introspection+jwt"`),
		"member":  withConfig(`,"max_jwt_size":` + strconv.Itoa(maxJWT) + `,"jwt_member":"jwt"`),
	}
	nest := func(open, close string, n int) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	bodies := func(n int) map[string]string {
		return map[string]string{
			"JSON body of [":         nest("[", "]", n),
			"JSON body of {":         `{"active":` + nest(`{"a":`, "}", n) + `}`,
			"unclosed JSON body":     strings.Repeat("[", n),
			"JWT header":             testjwt.Parts(`{"alg":"RS256","x":`+nest("[", "]", n)+`}`, `{"sub":"a"}`, "c2ln"),
			"JWT payload":            testjwt.Parts(`{"alg":"RS256"}`, `{"sub":"a","x":`+nest(`{"a":`, "}", n)+`}`, "c2ln"),
			"RFC 9701 payload":       testjwt.Parts(`{"alg":"RS256"}`, `{"token_introspection":{"active":true,"x":`+nest("[", "]", n)+`}}`, "c2ln"),
			"member JWT payload":     `{"active":true,"jwt":"` + testjwt.Parts(`{"alg":"RS256"}`, nest("[", "]", n), "c2ln") + `"}`,
			"JSON around the member": `{"active":true,"x":` + nest("[", "]", n) + `,"jwt":"` + phantomJWT("") + `"}`,
		}
	}
	forEachMode(t, func(t *testing.T, m mode) {
		for cfgName, cfg := range cfgs {
			t.Run(cfgName, func(t *testing.T) { // one emulator at a time
				h := started(t, m, cfg)
				for _, depth := range []int{9_000, 10_000, 100_000} {
					for name, body := range bodies(depth) {
						if len(body) > 4*maxJWT {
							continue
						}
						e := h.request(req(authBearer(token + "-" + strconv.Itoa(depth)))...)
						e.answer(idsOK(""), body)
						if r := e.local(); r == nil || r.StatusCode != 502 {
							t.Fatalf("%s, %s at depth %d: %v", cfgName, name, depth, r)
						}
					}
				}
				// The VM is alive and serves.
				if cfgName == "jwt" {
					e := h.request(req(authBearer(token))...)
					jwt := phantomJWT("")
					e.answer(idsOK(""), jwt)
					wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
				}
			})
		}
	})
}

// Random nesting shapes up to max_jwt_size, against the compiled module:
// whatever the shape, the VM answers and lives.
func TestRandomNestingNeverTrapsTheModule(t *testing.T) {
	m := modes[1] // the compiled module
	h := started(t, m, withConfig(`,"max_jwt_size":65536`))
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"[", "]", "{", "}", `{"a":`, `"x"`, ",", ":", `"\"["`, "1", `\`}
	for i := range 200 {
		var b strings.Builder
		for size := 1 + r.IntN(65536); b.Len() < size; {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		body := b.String()
		if i%2 == 1 {
			body = testjwt.Parts(`{"alg":"RS256"}`, body, "c2ln")
		}
		e := h.request(req(authBearer(token + "-r" + strconv.Itoa(i)))...)
		e.answer(idsOK(""), body)
		if e.local() == nil {
			t.Fatalf("shape %d: no answer", i)
		}
	}
	e := h.request(req(authBearer(token))...)
	jwt := phantomJWT("")
	e.answer(idsOK(""), jwt)
	wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+jwt)
}
