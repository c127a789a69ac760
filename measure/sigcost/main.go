// Command sigcost measures, inside Envoy's V8, what checking one DPoP proof
// costs (issue 16 item 3): internal/dpop's Parse and Check per algorithm,
// with the signature verified by package gosig (Go's crypto in the module),
// by Envoy's verify_signature foreign function (BoringSSL in Envoy, with
// the arguments dpop.VerifySignatureArgs makes), or, for PS* and EdDSA, as
// the filter does in the module ("module": package pss, crypto/ed25519).
//
//	make sigcost                       (ENVOY_PATH from e2e.mk)
//	cd measure && ENVOY_PATH=… go run ./sigcost [-n 300] [-rounds 5]
//
// It makes keys and proofs here, writes them into a small Go wasip1 module
// (a temporary package in the measure module, removed afterwards) that runs
// every case at plugin start (a warm-up, then -rounds rounds of -n calls,
// timed with the VM's clock) and logs ns per call; Envoy 1.40 runs it once as
// a singleton bootstrap wasm service, and this command prints the best and
// the median round of each case. V8 compiles Go's wasm in tiers, so the
// warm-up matters.
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

// A case the module runs: a proof, and which verifier checks it.
type testCase struct {
	name   string
	proof  string
	verify string // "gosig", "host" or "module"
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
	rs4096, err := rsa.GenerateKey(rand.Reader, 4096)
	check(err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	check(err)
	ecPoint, err := ec.PublicKey.Bytes()
	check(err)
	ecJWK := `"kty":"EC","crv":"P-256","x":"` + b64(ecPoint[1:33]) + `","y":"` + b64(ecPoint[33:]) + `"`
	rsaE := big.NewInt(int64(rs.E)).Bytes()
	rsaJWK := `"kty":"RSA","n":"` + b64(rs.N.Bytes()) + `","e":"` + b64(rsaE) + `"`
	rsa4096JWK := `"kty":"RSA","n":"` + b64(rs4096.N.Bytes()) + `","e":"` + b64(big.NewInt(int64(rs4096.E)).Bytes()) + `"`
	edJWK := `"kty":"OKP","crv":"Ed25519","x":"` + b64(ed.Public().(ed25519.PublicKey)) + `"`

	payload := `{"jti":"e1j3V_bKic8-LAEB","htm":"` + method + `","htu":"` + uri + `","iat":` + strconv.Itoa(iat) + `,"ath":"` + ath(token) + `"}`
	input := func(alg, jwk string) string {
		return b64([]byte(`{"typ":"dpop+jwt","alg":"`+alg+`","jwk":{`+jwk+`}}`)) + "." + b64([]byte(payload))
	}
	esIn, rsIn, psIn, edIn := input("ES256", ecJWK), input("RS256", rsaJWK), input("PS256", rsaJWK), input("EdDSA", edJWK)
	ps4096In := input("PS256", rsa4096JWK)
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
	ps4096Sig, err := rsa.SignPSS(rand.Reader, rs4096, crypto.SHA256, digest(ps4096In), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	check(err)
	edSig := ed25519.Sign(ed, []byte(edIn))

	// The ES256 proof with its key's y changed: a point off the curve,
	// which internal/dpop leaves to the verifier; both must refuse it.
	offY := append([]byte(nil), ecPoint[33:]...)
	offY[31] ^= 1
	offIn := input("ES256", `"kty":"EC","crv":"P-256","x":"`+b64(ecPoint[1:33])+`","y":"`+b64(offY)+`"`)

	proofs := []struct{ alg, proof string }{
		{"ES256", esIn + "." + b64(esSig)},
		{"RS256", rsIn + "." + b64(rsSig)},
		{"PS256", psIn + "." + b64(psSig)},
		{"EdDSA", edIn + "." + b64(edSig)},
		{"ES256-off-curve", offIn + "." + b64(esSig)},
		{"PS256-4096", ps4096In + "." + b64(ps4096Sig)},
	}
	var cases []testCase
	for _, v := range []string{"gosig", "host", "module"} {
		for _, p := range proofs {
			if v == "module" && !strings.HasPrefix(p.alg, "PS") && p.alg != "EdDSA" {
				continue // the filter verifies ES* and RS* on the host
			}
			cases = append(cases, testCase{name: v + " " + p.alg, proof: p.proof, verify: v})
		}
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
	fmt.Printf("%-22s %10s %10s  %s\n", "case", "best µs", "median µs", "result")
	for _, c := range cases {
		v := best[c.name]
		if len(v) == 0 {
			fmt.Printf("%-22s %10s %10s  %s\n", c.name, "-", "-", "no result")
			continue
		}
		slices.Sort(v)
		fmt.Printf("%-22s %10.1f %10.1f  %s\n", c.name, float64(v[0])/1e3, float64(v[len(v)/2])/1e3, results[c.name])
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
		fmt.Fprintf(&b, "\t{name: %q, proof: %q, verify: %q},\n", c.name, c.proof, c.verify)
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

// module is the wasm module's code: each case is dpop.Parse and Check with
// gosig.Verify, with verify_signature, or with the filter's in-module
// verifiers, as the filter would call them.
const module = `package main

import (
	"crypto/ed25519"
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/phantom-token/envoy-phantom-token/internal/dpop"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop/gosig"
	"github.com/phantom-token/envoy-phantom-token/internal/dpop/pss"
)

type testCase struct{ name, proof, verify string }

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

// host verifies with Envoy's verify_signature.
func host(k dpop.Key, input, sig []byte) bool {
	args, ok := dpop.VerifySignatureArgs(k, input, sig)
	if !ok {
		return false
	}
	ret, err := proxywasm.CallForeignFunction("verify_signature", args)
	return err == nil && dpop.VerifySignatureValid(ret)
}

// inModule verifies as the filter does in the module: PS* with package pss,
// EdDSA with crypto/ed25519.
func inModule(k dpop.Key, input, sig []byte) bool {
	if k.Alg == "EdDSA" {
		return len(k.X) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
			ed25519.Verify(ed25519.PublicKey(k.X), input, sig)
	}
	return pss.Verify(k, input, sig)
}

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	now := time.Unix(iat, 0)
	for _, c := range cases {
		verify := dpop.Verifier(gosig.Verify)
		switch c.verify {
		case "host":
			verify = host
		case "module":
			verify = inModule
		}
		call := func() string {
			p, err := dpop.Parse(c.proof, dpop.Algorithms, verify)
			if err == nil {
				err = p.Check(method, uri, token, now, time.Minute)
			}
			if err != nil {
				return "refused: " + err.Error()
			}
			return "valid"
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
`
