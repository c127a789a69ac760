package main

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"time"

	"github.com/phantom-token/envoy-phantom-token/filter/abi"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop/pss"
	"github.com/phantom-token/envoy-phantom-token/internal/replay"
	"github.com/phantom-token/envoy-phantom-token/internal/reply"
)

// checkProof checks the DPoP proof of a request whose token came with the
// DPoP scheme (RFC 9449 §4.3), on every request, before its token is looked
// up: one DPoP header, a proof that parses and is signed by its key, made for
// this method and URI, within the iat window, for this token (ath), with a
// current nonce when dpop_nonce is set, and never seen before. answered is
// true when the request was answered.
func (h *httpContext) checkProof() (action types.Action, answered bool) {
	cfg, p := h.cfg, h.plugin
	// One read of every header gives the proof and the request's URI: the
	// proof header must come once, and Envoy returns only the first value of
	// a header it does not fold.
	headers, err := getHeaders()
	if err != nil {
		return h.respond(reply.ServerError, "cannot read the request's headers: "+err.Error()), true
	}
	h.headers = headers
	r := readProofRequest(headers)
	if r.proofs != 1 {
		return h.respond(reply.InvalidDPoPProof, "not exactly one DPoP header"), true
	}
	if r.uri == "" {
		return h.respond(reply.ServerError, "the request has no :method, :scheme, :authority or :path"), true
	}
	h.method = r.method
	proof, err := p.proofHeaders.Parse(r.proof, cfg.DPoPAlgs, verifyProof)
	if err != nil {
		return h.respond(reply.InvalidDPoPProof, "DPoP proof: "+err.Error()), true
	}
	t := now()
	if err := proof.Check(r.method, r.uri, h.token, t, cfg.DPoPIATWindow); err != nil {
		return h.respond(reply.InvalidDPoPProof, "DPoP proof: "+err.Error()), true
	}
	if cfg.DPoPNonce {
		key := p.nonceKey(false)
		if !dpop.ValidNonce(key, proof.Nonce, t, cfg.DPoPIATWindow) {
			if key = p.nonceKey(true); !dpop.ValidNonce(key, proof.Nonce, t, cfg.DPoPIATWindow) {
				if h.nonce = dpop.NewNonce(key, t); h.nonce == "" {
					return h.respond(reply.ServerError, "no key to make DPoP nonces with"), true
				}
				return h.respond(reply.UseDPoPNonce, "DPoP proof without a current nonce"), true
			}
		}
	}
	switch v, err := p.rememberProof(proof, t); {
	case err != nil:
		return h.respond(reply.ServerError, "cannot remember the DPoP proof: "+err.Error()), true
	case v == replay.Replayed:
		return h.respond(reply.InvalidDPoPProof, "DPoP proof replayed"), true
	case v == replay.Full:
		return h.respond(reply.Overloaded, "no room to remember the DPoP proof (dpop_replay_max_entries)"), true
	}
	h.jkt = proof.JKT
	return types.ActionContinue, false
}

// verifyProof verifies a proof's signature where it costs least (see
// docs/sender-constrained.md, "Where signatures are verified"): ES* and RS*
// with Envoy's verify_signature, PS* with package pss in the module, EdDSA
// with Go's crypto/ed25519 in the module (verify_signature can check
// neither).
func verifyProof(k dpop.Key, input, sig []byte) bool {
	switch k.Alg {
	case "PS256", "PS384", "PS512":
		return pss.Verify(k, input, sig)
	case "EdDSA":
		// ed25519.Verify panics on a key of another size.
		return len(k.X) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
			ed25519.Verify(ed25519.PublicKey(k.X), input, sig)
	}
	return verifyOnHost(k, input, sig)
}

// verifyOnHost verifies a proof's signature with Envoy's verify_signature
// foreign function (ES*, RS*): BoringSSL in Envoy, about a tenth of the CPU
// of Go's crypto under V8, and 1.9 MB less module than linking it (see
// docs/sender-constrained.md). A failed call is a signature not verified.
func verifyOnHost(k dpop.Key, input, sig []byte) bool {
	args, ok := dpop.VerifySignatureArgs(k, input, sig)
	if !ok {
		return false
	}
	result, err := callForeign("verify_signature", args)
	return err == nil && dpop.VerifySignatureValid(result)
}

// proofRequest is what a DPoP proof is checked against, from the request's
// headers: the proof (proofs counts the DPoP headers), the method, and the
// URI its htu must match (before normalisation): scheme, authority and path
// without the query ("" when one is missing).
type proofRequest struct {
	proof, method, uri string
	proofs             int
}

func readProofRequest(headers [][2]string) proofRequest {
	var r proofRequest
	var scheme, authority, path string
	for _, kv := range headers {
		switch kv[0] {
		case "dpop":
			r.proof, r.proofs = kv[1], r.proofs+1
		case ":method":
			r.method = kv[1]
		case ":scheme":
			scheme = kv[1]
		case ":authority":
			authority = kv[1]
		case ":path":
			path, _, _ = strings.Cut(kv[1], "?")
		}
	}
	if r.method != "" && scheme != "" && authority != "" && path != "" {
		r.uri = scheme + "://" + authority + path
	}
	return r
}

// rememberProof records a proof in the proxy's replay sets, unless it is
// there (Replayed) or its set has no room (Full).
func (p *pluginContext) rememberProof(proof dpop.Proof, t time.Time) (replay.Verdict, error) {
	h := replay.Hash(proof.JKT, proof.JTI)
	key := replay.Key(replay.SetOf(h, replay.Sets(p.cfg.DPoPReplayMaxEntries)))
	expires := t.Add(2 * p.cfg.DPoPIATWindow) // an iat up to a window ahead stays valid that long
	for range claimAttempts {
		raw, cas, err := getShared(key)
		if err != nil {
			return 0, err // the sets are made at start (createReplaySets)
		}
		set, v := replay.Add(replay.Decode(raw), h, t, expires)
		if v != replay.Fresh {
			return v, nil
		}
		err = setShared(key, replay.Encode(set), cas)
		if err == nil {
			return replay.Fresh, nil
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return 0, err
		}
	}
	return 0, errors.New("the replay set kept changing under this worker")
}

// dpopPossible reports whether a request may come with the DPoP scheme
// under this configuration: the top level or a rule allows it, or route
// metadata could.
func dpopPossible(cfg *config.Config) bool {
	if cfg.DPoP != config.DPoPOff || cfg.RouteMetadata {
		return true
	}
	for _, r := range cfg.Routes {
		if r.Config.DPoP != config.DPoPOff {
			return true
		}
	}
	return false
}

// createReplaySets makes every replay set exist, empty, unless it does: a
// write with CAS 0 is unconditional, so only sets that exist make the
// remembering of a proof atomic across workers.
func (p *pluginContext) createReplaySets() {
	for n := range replay.Sets(p.cfg.DPoPReplayMaxEntries) {
		key := replay.Key(n)
		if _, _, err := getShared(key); errors.Is(err, types.ErrorStatusNotFound) {
			if err := setShared(key, nil, 0); err != nil {
				abi.LogWarn("phantom-token: cannot create the DPoP replay sets: " + err.Error())
				return
			}
		}
	}
}

// nonceKeyName is the shared-data key of the proxy's nonce key.
const nonceKeyName = "phantom-token/v3/dpop-nonce-key"

// nonceKey is the key DPoP nonces are made with: dpop_nonce_secret_env's,
// or one random to this proxy, made by the first worker that needs it and
// kept in shared data for the others. refresh reads it again (two workers
// may have made one at the same moment; the one stored stands).
func (p *pluginContext) nonceKey(refresh bool) []byte {
	if p.cfg.DPoPNonceSecret != nil {
		return p.cfg.DPoPNonceSecret
	}
	if p.dpopNonceKey != nil && !refresh {
		return p.dpopNonceKey
	}
	raw, _, err := getShared(nonceKeyName)
	if errors.Is(err, types.ErrorStatusNotFound) {
		key := make([]byte, dpop.MinNonceKeyLen)
		if err := randomBytes(key); err != nil {
			return nil
		}
		if err := setShared(nonceKeyName, key, 0); err != nil {
			return nil
		}
		raw, _, err = getShared(nonceKeyName)
	}
	if err != nil || len(raw) < dpop.MinNonceKeyLen {
		return nil
	}
	p.dpopNonceKey = append([]byte(nil), raw...)
	return p.dpopNonceKey
}
