package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
)

// trip decides, at each call of one host function, whether this one fails.
type trip func() bool

// hostFaults replace one host call with a version that fails (returns an
// error) or panics when its trip says so. Each returns a restore function.
var hostFaults = map[string]func(tr trip, panics bool) func(){
	"getHeader": func(tr trip, panics bool) func() {
		old := getHeader
		getHeader = func(n string) (string, error) {
			if tr() {
				boom(panics)
				return "", errHost
			}
			return old(n)
		}
		return func() { getHeader = old }
	},
	"replaceHeader": func(tr trip, panics bool) func() {
		old := replaceHeader
		replaceHeader = func(n, v string) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(n, v)
		}
		return func() { replaceHeader = old }
	},
	"removeHeader": func(tr trip, panics bool) func() {
		old := removeHeader
		removeHeader = func(n string) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(n)
		}
		return func() { removeHeader = old }
	},
	"addHeader": func(tr trip, panics bool) func() {
		old := addHeader
		addHeader = func(n, v string) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(n, v)
		}
		return func() { addHeader = old }
	},
	"sendReply": func(tr trip, panics bool) func() {
		old := sendReply
		sendReply = func(s uint32, h [][2]string, b []byte, g int32) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(s, h, b, g)
		}
		return func() { sendReply = old }
	},
	"resume": func(tr trip, panics bool) func() {
		old := resume
		resume = func() error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old()
		}
		return func() { resume = old }
	},
	"setEffective": func(tr trip, panics bool) func() {
		old := setEffective
		setEffective = func(id uint32) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(id)
		}
		return func() { setEffective = old }
	},
	"dispatchCall": func(tr trip, panics bool) func() {
		old := dispatchCall
		dispatchCall = func(c string, h [][2]string, b []byte, tl [][2]string, ms uint32, cb func(int, int, int)) (uint32, error) {
			if tr() {
				boom(panics)
				return 0, errHost
			}
			return old(c, h, b, tl, ms, cb)
		}
		return func() { dispatchCall = old }
	},
	"callHeaders": func(tr trip, panics bool) func() {
		old := callHeaders
		callHeaders = func() ([][2]string, error) {
			if tr() {
				boom(panics)
				return nil, errHost
			}
			return old()
		}
		return func() { callHeaders = old }
	},
	"callBody": func(tr trip, panics bool) func() {
		old := callBody
		callBody = func(s, n int) ([]byte, error) {
			if tr() {
				boom(panics)
				return nil, errHost
			}
			return old(s, n)
		}
		return func() { callBody = old }
	},
	"getShared": func(tr trip, panics bool) func() {
		old := getShared
		getShared = func(k string) ([]byte, uint32, error) {
			if tr() {
				boom(panics)
				return nil, 0, errHost
			}
			return old(k)
		}
		return func() { getShared = old }
	},
	"setShared": func(tr trip, panics bool) func() {
		old := setShared
		setShared = func(k string, v []byte, cas uint32) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(k, v, cas)
		}
		return func() { setShared = old }
	},
	"enqueue": func(tr trip, panics bool) func() {
		old := enqueue
		enqueue = func(q uint32, d []byte) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(q, d)
		}
		return func() { enqueue = old }
	},
	"dequeue": func(tr trip, panics bool) func() {
		old := dequeue
		dequeue = func(q uint32) ([]byte, error) {
			if tr() {
				boom(panics)
				return nil, errHost
			}
			return old(q)
		}
		return func() { dequeue = old }
	},
	"getProperty": func(tr trip, panics bool) func() {
		old := getProperty
		getProperty = func(path string) ([]byte, error) {
			if tr() {
				boom(panics)
				return nil, errHost
			}
			return old(path)
		}
		return func() { getProperty = old }
	},
	"getHeaders": func(tr trip, panics bool) func() {
		old := getHeaders
		getHeaders = func() ([][2]string, error) {
			if tr() {
				boom(panics)
				return nil, errHost
			}
			return old()
		}
		return func() { getHeaders = old }
	},
	"callForeign": func(tr trip, panics bool) func() {
		old := callForeign
		callForeign = func(name string, args []byte) ([]byte, error) {
			if tr() {
				boom(panics)
				return nil, errHost
			}
			return old(name, args)
		}
		return func() { callForeign = old }
	},
	"setTick": func(tr trip, panics bool) func() {
		old := setTick
		setTick = func(ms uint32) error {
			if tr() {
				boom(panics)
				return errHost
			}
			return old(ms)
		}
		return func() { setTick = old }
	},
}

func boom(panics bool) {
	if panics {
		panic("injected host panic")
	}
}

// A failing host call that means "the request is gone" in Envoy leaves
// nothing to answer: set_effective_context fails only for a context that no
// longer exists, and a failed local reply or resume has no second chance.
// Those run as panics only.
var failMeansGone = map[string]bool{"setEffective": true, "sendReply": true, "resume": true}

// faultScenario touches every path: a claimed call with a waiter, a wait on
// another VM's call answered on the tick, a local hit, a CORS preflight, an
// OPTIONS shaped like one that carries Authorization, a local reply to HEAD.
// Every request carries two forged copies of x-jwt (the custom upstream
// header of faultConfigs). Every call it causes is answered (the first with a
// JWT, any later one, made after a fault, with 500). It returns every request
// it made.
func faultScenario(t *testing.T, h *host, cfg string) []*exchange {
	jwt := phantomJWT("")
	var calls []proxytest.HttpCalloutAttribute
	seen := 0
	collect := func() {
		all := h.rootCallouts()
		calls, seen = append(calls, all[seen:]...), len(all)
	}
	var sent []*exchange
	send := func(headers ...[2]string) *exchange {
		e := h.request(append(headers, forgedUpstream...)...)
		sent = append(sent, e)
		calls = append(calls, h.GetCalloutAttributesFromContext(e.id)...)
		collect()
		return e
	}
	answerNext := func(headers [][2]string, body string) {
		if len(calls) > 0 {
			c := calls[0]
			calls = calls[1:]
			var b []byte
			if body != "" {
				b = []byte(body)
			}
			h.CallOnHttpCallResponse(c.CalloutID, headers, nil, b)
			collect()
		}
	}
	other := slotOf(t, cfg, token+"-other")
	other.write(cache.Record{Kind: cache.Pending, Expires: farFuture})
	send(req(authBearer(token))...)            // calls
	send(req(authBearer(token))...)            // joins
	send(req(authBearer(token + "-other"))...) // waits for the other VM
	answerNext(idsOK(""), jwt)                 // the first call's answer
	other.write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: jwt})
	h.Tick() // the other VM's answer
	collect()
	send(req(authBearer(token))...)      // a hit
	if strings.Contains(cfg, `"dpop"`) { // a DPoP request for the cached (unbound) token: its proof is checked, then 401
		send(dpopReq(token, faultKey.proof(t, token, proofOpts{}))...)
	}
	send(preflightRequest...)                                                      // a preflight
	send(append(append([][2]string{}, preflightRequest...), authBearer(token))...) // an OPTIONS with a token: a hit
	send([2]string{":method", "HEAD"}, [2]string{":path", "/"})                    // 401 without a body
	if strings.Contains(cfg, `"stale_if_error"`) {
		// A token whose answer is stale: its call fails (500, below), the
		// stale answer stands in. One due for a refresh: served, and its
		// refresh is called from the plugin's context. Calls still
		// outstanding are answered first: the emulator numbers a call by
		// the calls outstanding, so a new one could take a live call's ID.
		for len(calls) > 0 {
			answerNext(status(500), "")
		}
		slotOf(t, cfg, token+"-stale").write(cache.Record{Kind: cache.Active, Expires: time.Now().Add(-time.Second), StaleUntil: farFuture, JWT: jwt})
		send(req(authBearer(token + "-stale"))...)
		slotOf(t, cfg, token+"-ahead").write(cache.Record{Kind: cache.Active, Expires: farFuture, RefreshAt: longAgo, JWT: jwt})
		send(req(authBearer(token + "-ahead"))...)
		send(req(authBearer(token + "-ahead"))...)
	}
	h.Tick()
	collect()
	for range 8 { // calls made after a fault
		answerNext(status(500), "")
	}
	return sent
}

var (
	preflightRequest = [][2]string{{":method", "OPTIONS"}, {":path", "/api"}, {"origin", "https://app.example"}, {"access-control-request-method", "POST"}}
	// forgedUpstream are a client's own copies of the custom upstream header
	// and of the claim header of the "claims" configuration.
	forgedUpstream = [][2]string{{"x-jwt", "eyJforged.one.x"}, {"x-jwt", "eyJforged.two.x"}, {"x-user", "forged-user"}}
)

// faultConfigs are the configurations the fault matrix runs with: the JWT in
// Authorization (replaced), in a custom header (removed, then added), and
// with route rules, route metadata (three property reads a request) and a
// claim header (removed first, added from the JWT). They keep the table
// small: its sets are created at start, before faults are armed.
var faultConfigs = []struct{ name, upstream, cfg string }{
	{"authorization", "authorization", withConfig(`,"cache_max_entries":8`)},
	{"x-jwt", "x-jwt", withConfig(`,"cache_max_entries":8,"upstream_header":"x-jwt"`)},
	{"claims", "x-jwt", withConfig(`,"cache_max_entries":8,"upstream_header":"x-jwt","claim_headers":[{"claim":"sub","header":"x-user"}],` +
		`"routes":[{"route":"health","enabled":false}],"route_metadata":true`)},
	{"dpop", "authorization", withConfig(`,"cache_max_entries":8,"dpop":"allowed","dpop_replay_max_entries":8`)},
	{"bad-day", "authorization", withConfig(`,"cache_max_entries":8,"stale_if_error":"60s","stale_header":"x-stale","refresh_ahead":0.5`)},
}

// faultKey signs the DPoP proofs of the fault scenario.
var faultKey = func() dpopKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return dpopKeyOf(k)
}()

// oneOutcome: a request was let through or answered, never both, never
// neither.
func oneOutcome(t *testing.T, i int, e *exchange) {
	t.Helper()
	forwarded := e.finalAction() == types.ActionContinue
	answered := e.local() != nil
	if forwarded == answered {
		t.Errorf("request %d: forwarded %v, answered %v", i, forwarded, answered)
	}
	if answered && e.local().StatusCode != 500 && e.local().StatusCode != 502 && e.local().StatusCode != 401 && e.local().StatusCode != 503 {
		t.Errorf("request %d: answered %d", i, e.local().StatusCode)
	}
}

// nothingSmuggled: a request let through carries, in the upstream header,
// exactly the filter's value when it came with Authorization, and nothing
// when it did not (a preflight); the client's token never reaches the
// upstream in Authorization, and no forged copy of the upstream header does.
// (With a custom upstream header the client's Authorization goes upstream
// unchanged, as documented; the JWT in that header is what the upstream
// trusts.)
func nothingSmuggled(t *testing.T, i int, e *exchange, upstream string, claims bool) {
	t.Helper()
	if e.finalAction() != types.ActionContinue || e.local() != nil {
		return
	}
	got := e.upstreamHeaders()
	want := []string(nil)
	if len(header(e.sent, "authorization")) > 0 {
		want = []string{phantomJWT("")}
		if upstream == "authorization" {
			want[0] = "Bearer " + want[0]
		}
	}
	if v := header(got, upstream); !reflect.DeepEqual(v, want) {
		t.Errorf("request %d let through with %s %q, want %q", i, upstream, v, want)
	}
	for _, kv := range got {
		if upstream == "authorization" && kv[0] == "authorization" && strings.Contains(kv[1], token) {
			t.Errorf("request %d let through with the client's token: %q", i, kv)
		}
		if kv[0] == upstream && strings.Contains(kv[1], "forged") {
			t.Errorf("request %d let through with a forged %s: %q", i, upstream, kv[1])
		}
		if claims && kv[0] == "x-user" && kv[1] != "alice" {
			t.Errorf("request %d let through with a claim header not from the JWT: %q", i, kv[1])
		}
	}
}

// Every request gets exactly one outcome, whatever host call fails or panics,
// at whichever of its calls; no request let through carries a credential or
// an upstream header of the client's own; afterwards no flight is left and
// the tick is off.
func TestEveryRequestGetsOneOutcomeWhateverFails(t *testing.T) {
	m := modes[0] // faults are injected into the Go code
	called := map[string]int{}
	for _, fc := range faultConfigs {
		upstream, cfg, claims := fc.upstream, fc.cfg, fc.name == "claims"
		for name, install := range hostFaults {
			// Count the calls of the function in a clean run.
			calls := 0
			t.Run(fc.name+"/"+name+"/count", func(t *testing.T) { // the emulator is released when a (sub)test ends
				h := newHost(t, m, cfg)
				restore := install(func() bool { calls++; return false }, false)
				defer restore()
				for i, e := range faultScenario(t, h, cfg) {
					oneOutcome(t, i, e)
					nothingSmuggled(t, i, e, upstream, claims)
				}
			})
			called[name] += calls
			for _, panics := range []bool{false, true} {
				if !panics && failMeansGone[name] {
					continue
				}
				for k := 1; k <= calls; k++ {
					t.Run(fmt.Sprintf("%s/%s/panics=%v/call %d of %d", fc.name, name, panics, k, calls), func(t *testing.T) {
						h := newHost(t, m, cfg)
						n := 0
						restore := install(func() bool { n++; return n == k }, panics)
						defer restore()
						for i, e := range faultScenario(t, h, cfg) {
							oneOutcome(t, i, e)
							nothingSmuggled(t, i, e, upstream, claims)
						}
						restore()
						settledState(t, h, m)
					})
				}
			}
		}
	}
	for name := range hostFaults {
		if called[name] == 0 {
			t.Errorf("%s: the scenario never calls it", name)
		}
	}
}

// A dispatch the host refuses answers the request 502 and releases its
// claim (faults are injected into the Go code).
func TestDispatchFailureAnswersEveryWaiter(t *testing.T) {
	m := modes[0]
	h := started(t, m, withConfig(""))
	restore := hostFaults["dispatchCall"](func() bool { return true }, false)
	defer restore()
	a := h.request(req(authBearer(token))...)
	wantReply(t, a, 502, "", serverErrorBody)
	if got := slotOf(t, withConfig(""), token).read(); got.Kind != cache.None {
		t.Errorf("the claim was not released: %v", got.Kind)
	}
	settledState(t, h, m)
}

// A lost claim race: another VM writes the set between this VM's read and
// its compare-and-swap; this VM reads again and waits for that VM's call.
func TestLostClaimRaceWaits(t *testing.T) {
	m := modes[0]
	cfg := withConfig("")
	h := started(t, m, cfg)
	s := slotOf(t, cfg, token)
	first := true
	old := getShared
	getShared = func(k string) ([]byte, uint32, error) {
		raw, cas, err := old(k)
		if k == s.key && first {
			first = false
			s.write(cache.Record{Kind: cache.Pending, Expires: farFuture}) // the other VM wins
		}
		return raw, cas, err
	}
	defer func() { getShared = old }()
	e := h.request(req(authBearer(token))...)
	if len(e.callouts()) != 0 || e.action != types.ActionPause || h.GetTickPeriod() != tickPeriod {
		t.Fatalf("did not wait for the winner: %d calls, %v, tick %d", len(e.callouts()), e.action, h.GetTickPeriod())
	}
	s.write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: phantomJWT("")})
	h.Tick()
	wantForwarded(t, e, req(authBearer(token)), "authorization", "Bearer "+phantomJWT(""))
	settledState(t, h, m)
}

// A superseded answer: after a panic abandoned a flight, its call's answer
// comes and is ignored.
func TestAnswerOfAnAbandonedFlightIsIgnored(t *testing.T) {
	m := modes[0]
	h := started(t, m, withConfig(""))
	e := h.request(req(authBearer(token))...)
	var f *flight
	for _, fl := range lastPlugin.flights {
		f = fl
	}
	if f == nil {
		t.Fatal("no flight")
	}
	lastPlugin.abandon(f)
	wantReply(t, e, 500, "", serverErrorBody)
	e.answer(idsOK(""), phantomJWT(""))
	if e.finalAction() == types.ActionContinue {
		t.Error("an abandoned request was let through")
	}
	settledState(t, h, m)
}

// The host may end a stream while the filter answers it (Envoy can log and
// finish a stream inside send_local_response): the flight's other requests are
// still answered, each once.
func TestStreamEndingWhileAnsweredSkipsNoOne(t *testing.T) {
	m := modes[0]
	h := started(t, m, withConfig(""))
	first := h.request(req(authBearer(token))...)
	waiters := []*exchange{first, h.request(req(authBearer(token))...), h.request(req(authBearer(token))...)}
	old := sendReply
	ended := false
	sendReply = func(s uint32, hs [][2]string, b []byte, g int32) error {
		err := old(s, hs, b, g)
		if !ended {
			ended = true
			h.CompleteHttpContext(first.id) // re-entrant stream end of the request being answered
		}
		return err
	}
	defer func() { sendReply = old }()
	first.answer(status(503), "")
	for i, w := range waiters {
		if r := w.local(); r == nil || r.StatusCode != 503 {
			t.Errorf("request %d: %v", i, r)
		}
	}
	settledState(t, h, m)
}

// Contexts of requests done without a flight are reused; one that waited in
// a flight never is; a reused context keeps nothing of its last request.
func TestContextReuse(t *testing.T) {
	m := modes[0]
	t.Run("a hit's context is reused, a flight's is not", func(t *testing.T) {
		h := started(t, m, withConfig(""))
		h.request(req(authBearer(token))...).answer(idsOK(""), phantomJWT(""))
		hit := h.request(req(authBearer(token))...)
		h.CompleteHttpContext(hit.id)
		if n := len(lastPlugin.spare); n != 1 {
			t.Fatalf("%d spare contexts after a hit ended, want 1", n)
		}
		next := h.request(req(authBearer(token))...)
		wantForwarded(t, next, req(authBearer(token)), "authorization", "Bearer "+phantomJWT(""))
		if n := len(lastPlugin.spare); n != 0 {
			t.Errorf("the spare context was not reused: %d left", n)
		}
		waited := h.request(req(authBearer(token + "-new"))...)
		waited.answer(status(204), "")
		h.CompleteHttpContext(waited.id)
		if n := len(lastPlugin.spare); n != 0 {
			t.Errorf("a context that waited in a flight was kept for reuse")
		}
	})
	// Two tokens whose answers another VM cached (so this VM reads them from
	// shared data by their hash), served one after the other through the
	// same context: each gets its own JWT. A context that kept the first
	// request's token hash would look up, and serve, the first token's JWT
	// for the second.
	t.Run("a reused context keeps no token hash", func(t *testing.T) {
		cfg := withConfig("")
		h := started(t, m, cfg)
		alice, bob := token+"-alice", token+"-bob"
		jwts := map[string]string{alice: phantomJWT(`"name":"alice"`), bob: phantomJWT(`"name":"bob"`)}
		for tok, jwt := range jwts {
			slotOf(t, cfg, tok).write(cache.Record{Kind: cache.Active, Expires: farFuture, JWT: jwt})
		}
		first := h.request(req(authBearer(alice))...)
		wantForwarded(t, first, req(authBearer(alice)), "authorization", "Bearer "+jwts[alice])
		h.CompleteHttpContext(first.id)
		if n := len(lastPlugin.spare); n != 1 {
			t.Fatalf("%d spare contexts after a hit ended, want 1", n)
		}
		second := h.request(req(authBearer(bob))...)
		if n := len(lastPlugin.spare); n != 0 {
			t.Fatalf("the spare context was not reused: %d left", n)
		}
		if len(second.callouts()) != 0 {
			t.Fatalf("%d calls, want a cache hit", len(second.callouts()))
		}
		wantForwarded(t, second, req(authBearer(bob)), "authorization", "Bearer "+jwts[bob])
	})
}
