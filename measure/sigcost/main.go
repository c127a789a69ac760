// Command sigcost measures, inside Envoy's V8, what checking one DPoP proof
// costs (issue 16 item 3): internal/dpop's Parse and Check with Go's
// crypto in the module, per algorithm; and Envoy's verify_signature foreign
// function (BoringSSL in Envoy) for the same signatures, including the
// per-call work a filter would add (the JWK as a DER SubjectPublicKeyInfo,
// ES256's r||s as an ASN.1 signature, the protobuf arguments).
//
//	make sigcost                       (ENVOY_PATH from e2e.mk)
//	cd measure && ENVOY_PATH=… go run ./sigcost [-n 300] [-rounds 5]
//
// It makes keys and proofs here, writes them into a small Go wasip1 module
// (a temporary package in the measure module, removed afterwards) that runs
// every case at plugin start (a warm-up, then -rounds rounds of -n calls,
// timed with the VM's clock) and logs ns per call; Envoy 1.40 runs it once as
// a singleton bootstrap wasm service, and this command prints the best round
// of each case. V8 compiles Go's wasm in tiers, so the warm-up matters.
package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A case the module runs. Module cases parse and check a proof with
// internal/dpop; host cases verify a signature with verify_signature.
type testCase struct {
	name  string
	proof string // module: the compact JWS
	// host: the key as JWK members would give it, the signature as JWS
	// carries it, what was signed, and the hash.
	kind       string // "EC", "RSA" or "OKP"
	x, y, n, e []byte
	sig, input []byte
	hash       string
}

const (
	method = "GET"
	uri    = "https://api.example.com/orders/42"
	token  = "an-opaque-access-token"
	iat    = 1_800_000_000
)

func main() {
	n := flag.Int("n", 300, "calls per round")
	rounds := flag.Int("rounds", 5, "timed rounds per case (the best is printed)")
	flag.Parse()
	log.SetFlags(0)
	envoy := os.Getenv("ENVOY_PATH")
	if envoy == "" {
		log.Fatal("ENVOY_PATH is not set (make sigcost sets it)")
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	check(err)
	ecPoint, err := ec.PublicKey.Bytes()
	check(err)
	ecJWK := `"kty":"EC","crv":"P-256","x":"` + b64(ecPoint[1:33]) + `","y":"` + b64(ecPoint[33:]) + `"`
	rsaE := big.NewInt(int64(rs.E)).Bytes()
	rsaJWK := `"kty":"RSA","n":"` + b64(rs.N.Bytes()) + `","e":"` + b64(rsaE) + `"`
	edJWK := `"kty":"OKP","crv":"Ed25519","x":"` + b64(ed.Public().(ed25519.PublicKey)) + `"`

	payload := `{"jti":"e1j3V_bKic8-LAEB","htm":"` + method + `","htu":"` + uri + `","iat":` + strconv.Itoa(iat) + `,"ath":"` + ath(token) + `"}`
	input := func(alg, jwk string) string {
		return b64([]byte(`{"typ":"dpop+jwt","alg":"`+alg+`","jwk":{`+jwk+`}}`)) + "." + b64([]byte(payload))
	}
	esIn, rsIn, psIn, edIn := input("ES256", ecJWK), input("RS256", rsaJWK), input("PS256", rsaJWK), input("EdDSA", edJWK)
	digest := func(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }
	r, s, err := ecdsa.Sign(rand.Reader, ec, digest(esIn))
	check(err)
	esSig := make([]byte, 64)
	r.FillBytes(esSig[:32])
	s.FillBytes(esSig[32:])
	rsSig, err := rsa.SignPKCS1v15(rand.Reader, rs, crypto.SHA256, digest(rsIn))
	check(err)
	psSig, err := rsa.SignPSS(rand.Reader, rs, crypto.SHA256, digest(psIn), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	check(err)
	edSig := ed25519.Sign(ed, []byte(edIn))

	cases := []testCase{
		{name: "module ES256", proof: esIn + "." + b64(esSig)},
		{name: "module RS256", proof: rsIn + "." + b64(rsSig)},
		{name: "module PS256", proof: psIn + "." + b64(psSig)},
		{name: "module EdDSA", proof: edIn + "." + b64(edSig)},
		{name: "host ES256", kind: "EC", x: ecPoint[1:33], y: ecPoint[33:], sig: esSig, input: []byte(esIn), hash: "sha256"},
		{name: "host RS256", kind: "RSA", n: rs.N.Bytes(), e: rsaE, sig: rsSig, input: []byte(rsIn), hash: "sha256"},
		{name: "host PS256", kind: "RSA", n: rs.N.Bytes(), e: rsaE, sig: psSig, input: []byte(psIn), hash: "sha256"},
		{name: "host EdDSA", kind: "OKP", x: ed.Public().(ed25519.PublicKey), sig: edSig, input: []byte(edIn), hash: "sha512"},
	}

	dir, err := os.MkdirTemp(".", ".sigcost-")
	check(err)
	defer os.RemoveAll(dir)
	check(os.WriteFile(filepath.Join(dir, "main.go"), []byte(module), 0o644))
	check(os.WriteFile(filepath.Join(dir, "cases.go"), []byte(casesSource(cases, *n, *rounds)), 0o644))
	wasm, err := filepath.Abs(filepath.Join(dir, "sigcost.wasm"))
	check(err)
	build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", wasm, "./"+filepath.ToSlash(dir))
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		log.Fatalf("build: %v\n%s", err, out)
	}
	bootstrap := filepath.Join(dir, "envoy.yaml")
	check(os.WriteFile(bootstrap, []byte(strings.ReplaceAll(bootstrapYAML, "WASM", wasm)), 0o644))

	cmd := exec.Command(envoy, "-c", bootstrap, "--disable-hot-restart", "--concurrency", "1",
		"--log-level", "warn", "--component-log-level", "wasm:info")
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	version, _ := exec.Command(envoy, "--version").Output()
	fmt.Printf("Envoy: %s", strings.TrimSpace(strings.TrimPrefix(string(version), "\n"))+"\n")
	best := map[string][]int64{}
	results := map[string]string{}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(10 * time.Minute)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				log.Fatal("Envoy exited before the module finished")
			}
			i := strings.Index(line, "sigcost ")
			if i < 0 {
				if strings.Contains(line, "[critical]") || strings.Contains(line, "[error]") {
					log.Printf("envoy: %s", line)
				}
				continue
			}
			f := strings.Fields(line[i+len("sigcost "):])
			if f[0] == "done" {
				break wait
			}
			// sigcost <module|host> <alg> <ns/op> <result>
			name := f[0] + " " + f[1]
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			best[name] = append(best[name], ns)
			results[name] = strings.Join(f[3:], " ")
		case <-deadline:
			log.Fatal("no result from the module in 10 minutes")
		}
	}
	fmt.Printf("per call, inside Envoy's V8, best and median of %d rounds of %d calls after a warm-up\n", *rounds, *n)
	fmt.Printf("%-14s %10s %10s  %s\n", "case", "best µs", "median µs", "result")
	for _, c := range cases {
		v := best[c.name]
		if len(v) == 0 {
			fmt.Printf("%-14s %10s %10s  %s\n", c.name, "-", "-", "no result")
			continue
		}
		slices.Sort(v)
		fmt.Printf("%-14s %10.1f %10.1f  %s\n", c.name, float64(v[0])/1e3, float64(v[len(v)/2])/1e3, results[c.name])
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ath(t string) string { d := sha256.Sum256([]byte(t)); return b64(d[:]) }

// casesSource is the module's data: the cases as Go literals.
func casesSource(cases []testCase, n, rounds int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package main\n\nconst (\n\tcalls = %d\n\trounds = %d\n\tmethod = %q\n\turi = %q\n\ttoken = %q\n\tiat = %d\n)\n\n", n, rounds, method, uri, token, iat)
	b.WriteString("var cases = []testCase{\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "\t{name: %q, proof: %q, kind: %q, x: %q, y: %q, n: %q, e: %q, sig: %q, input: %q, hash: %q},\n",
			c.name, c.proof, c.kind, c.x, c.y, c.n, c.e, c.sig, c.input, c.hash)
	}
	b.WriteString("}\n")
	return b.String()
}

const bootstrapYAML = `bootstrap_extensions:
- name: envoy.bootstrap.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.wasm.v3.WasmService
    singleton: true
    config:
      name: sigcost
      vm_config:
        runtime: envoy.wasm.runtime.v8
        code: {local: {filename: "WASM"}}
`

// module is the wasm module's code. Host cases do per call what a filter
// would: JWK members to a DER SubjectPublicKeyInfo, r||s to an ASN.1
// ECDSA-Sig-Value, the VerifySignatureArguments protobuf (hash_function = 1,
// public_key = 2, signature = 3, text = 4), the call, and reading
// VerifySignatureResult (result = 1, error = 2).
const module = `package main

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
)

type testCase struct {
	name, proof, kind, x, y, n, e, sig, input, hash string
}

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	now := time.Unix(iat, 0)
	for _, c := range cases {
		c := c
		var call func() string
		if c.proof != "" {
			call = func() string {
				p, err := dpop.Parse(c.proof, dpop.Algorithms)
				if err == nil {
					err = p.Check(method, uri, token, now, time.Minute)
				}
				if err != nil {
					return "refused: " + err.Error()
				}
				return "valid"
			}
		} else {
			call = func() string { return verifySignature(c) }
		}
		result := call()
		for i := 0; i < calls; i++ {
			call()
		}
		for r := 0; r < rounds; r++ {
			start := time.Now()
			for i := 0; i < calls; i++ {
				call()
			}
			ns := time.Since(start).Nanoseconds() / calls
			proxywasm.LogWarn("sigcost " + c.name + " " + strconv.FormatInt(ns, 10) + " " + result)
		}
	}
	proxywasm.LogWarn("sigcost done")
	return types.OnPluginStartStatusOK
}

func verifySignature(c testCase) string {
	var key, sig []byte
	switch c.kind {
	case "EC":
		key = append([]byte("\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00\x04"), c.x...)
		key = append(key, c.y...)
		sig = tlv(0x30, append(derInt(c.sig[:32]), derInt(c.sig[32:])...))
	case "RSA":
		spk := tlv(0x30, append(derInt(c.n), derInt(c.e)...))
		key = tlv(0x30, append([]byte("\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00"), tlv(0x03, append([]byte{0}, spk...))...))
		sig = []byte(c.sig)
	default: // Ed25519
		key = append([]byte("\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00"), c.x...)
		sig = []byte(c.sig)
	}
	args := field(nil, 1, []byte(c.hash))
	args = field(args, 2, key)
	args = field(args, 3, sig)
	args = field(args, 4, []byte(c.input))
	ret, err := proxywasm.CallForeignFunction("verify_signature", args)
	if err != nil {
		return "call failed: " + err.Error()
	}
	if len(ret) >= 2 && ret[0] == 0x08 && ret[1] == 1 {
		return "valid"
	}
	msg := ""
	for i := 0; i+1 < len(ret); {
		tag, l := ret[i], int(ret[i+1])
		if tag == 0x12 && i+2+l <= len(ret) {
			msg = string(ret[i+2 : i+2+l])
		}
		i += 2 + l
	}
	return "refused: " + msg
}

func field(b []byte, n int, v []byte) []byte {
	b = append(b, byte(n<<3|2))
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func tlv(tag byte, v []byte) []byte {
	b := []byte{tag}
	switch n := len(v); {
	case n < 0x80:
		b = append(b, byte(n))
	case n < 0x100:
		b = append(b, 0x81, byte(n))
	default:
		b = append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, v...)
}

func derInt(v string) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if v[0] >= 0x80 {
		v = "\x00" + v
	}
	return tlv(0x02, []byte(v))
}
`
