// Command linkcost measures what linking one package (one use of it) adds to
// a no-op Go wasip1 proxy-wasm module: it builds the no-op, then the no-op
// plus each use below, and prints the sizes of the .wasm files and of their
// code and data sections. The uses overlap (most pull fmt, strconv, reflect),
// so the extras do not add up; two rows combine several. The last rows are
// DPoP's (issue 16): crypto/ecdsa, rsa and ed25519 alone and together, and
// internal/dpop with each verifier: verify_signature alone, the filter's
// (verify_signature, and internal/dpop/pss and crypto/ed25519 for PS* and
// EdDSA), Go's crypto (importing a crypto package links its initialisation
// even where no function of it is called).
//
//	make linkcost
//	cd measure && go run ./linkcost
//
// Each variant is a small main package written into a temporary directory
// inside the measure module (so it builds with that go.mod, whose SDK and
// gjson are the filter's: it requires the root module) and removed
// afterwards; run it from measure/.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/phantom-token/envoy-phantom-token/measure/wasmfile"
)

const template = `package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
%s)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

var sink any

func (*plugin) OnPluginStart(n int) types.OnPluginStartStatus {
	b, _ := proxywasm.GetPluginConfiguration()
	s := string(b)
	_, _ = s, n
%s
	return types.OnPluginStartStatusOK
}
`

// variant is a use of some packages.
type variant struct {
	name    string
	imports []string
	use     string
}

var variants = []variant{
	{"no-op", nil, ""},
	{"github.com/tidwall/gjson (Get)", []string{"github.com/tidwall/gjson"}, `sink = gjson.Get(s, "a").String()`},
	{"fmt (Sprintf)", []string{"fmt"}, `sink = fmt.Sprintf("%s %d", s, n)`},
	{"the SDK's LogInfof (fmt)", nil, `proxywasm.LogInfof("x %s", s)`},
	{"net/url (Parse)", []string{"net/url"}, `sink, _ = url.Parse(s)`},
	{"crypto/sha256 (Sum256)", []string{"crypto/sha256"}, `sink = sha256.Sum256(b)`},
	{"encoding/json (Unmarshal)", []string{"encoding/json"}, `var v map[string]any; sink = json.Unmarshal(b, &v)`},
	{"encoding/base64 (RawURLEncoding)", []string{"encoding/base64"}, `sink, _ = base64.RawURLEncoding.DecodeString(s)`},
	{"time (ParseDuration, Now)", []string{"time"}, `sink, _ = time.ParseDuration(s); sink = time.Now().Unix()`},
	{"time (Format)", []string{"time"}, `sink = time.Now().Format(time.RFC3339)`},
	{"strconv (Itoa, ParseFloat)", []string{"strconv"}, `sink = strconv.Itoa(n); sink, _ = strconv.ParseFloat(s, 64)`},
	{"errors.New + LogCritical", []string{"errors"}, `proxywasm.LogCritical(errors.New(s).Error())`},
	{"all of the above but gjson and encoding/json", []string{"fmt", "net/url", "crypto/sha256", "encoding/base64", "time", "strconv", "errors"},
		`sink = fmt.Sprintf("%s %d", s, n); proxywasm.LogInfof("x %s", s); sink, _ = url.Parse(s); sink = sha256.Sum256(b)
	sink, _ = base64.RawURLEncoding.DecodeString(s); sink, _ = time.ParseDuration(s); sink = time.Now().Format(time.RFC3339)
	sink = strconv.Itoa(n); proxywasm.LogCritical(errors.New(s).Error())`},
	{"the same and gjson", []string{"fmt", "net/url", "crypto/sha256", "encoding/base64", "time", "strconv", "errors", "github.com/tidwall/gjson"},
		`sink = fmt.Sprintf("%s %d", s, n); proxywasm.LogInfof("x %s", s); sink, _ = url.Parse(s); sink = sha256.Sum256(b)
	sink, _ = base64.RawURLEncoding.DecodeString(s); sink, _ = time.ParseDuration(s); sink = time.Now().Format(time.RFC3339)
	sink = strconv.Itoa(n); proxywasm.LogCritical(errors.New(s).Error()); sink = gjson.Get(s, "a").String()`},
	// DPoP (issue 16): the signature packages a proof needs, apart and
	// together (they share math/big), and the package that uses them.
	{"math/big (SetBytes, Cmp)", []string{"math/big"}, `sink = new(big.Int).SetBytes(b).Cmp(big.NewInt(int64(n)))`},
	{"crypto/ecdsa (P-256 key, Verify)", []string{"crypto/ecdsa", "crypto/elliptic", "math/big"},
		`k, _ := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); sink = ecdsa.Verify(k, b, new(big.Int).SetBytes(b), big.NewInt(int64(n)))`},
	{"crypto/ecdsa (P-256, P-384, P-521)", []string{"crypto/ecdsa", "crypto/elliptic", "math/big"},
		`for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} { k, _ := ecdsa.ParseUncompressedPublicKey(c, b); sink = ecdsa.Verify(k, b, new(big.Int).SetBytes(b), big.NewInt(int64(n))) }`},
	{"crypto/rsa (VerifyPKCS1v15, VerifyPSS)", []string{"crypto", "crypto/rsa", "math/big"},
		`k := &rsa.PublicKey{N: new(big.Int).SetBytes(b), E: n}; sink = rsa.VerifyPKCS1v15(k, crypto.SHA256, b, b); sink = rsa.VerifyPSS(k, crypto.SHA256, b, b, nil)`},
	{"crypto/ed25519 (Verify)", []string{"crypto/ed25519"}, `sink = ed25519.Verify(ed25519.PublicKey(b), b, b)`},
	{"crypto/ecdsa, rsa and ed25519 together", []string{"crypto", "crypto/ecdsa", "crypto/elliptic", "crypto/rsa", "crypto/ed25519", "math/big"},
		`for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} { k, _ := ecdsa.ParseUncompressedPublicKey(c, b); sink = ecdsa.Verify(k, b, new(big.Int).SetBytes(b), big.NewInt(int64(n))) }
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(b), E: n}; sink = rsa.VerifyPKCS1v15(k, crypto.SHA256, b, b); sink = rsa.VerifyPSS(k, crypto.SHA256, b, b, nil)
	sink = ed25519.Verify(ed25519.PublicKey(b), b, b)`},
	{"internal/dpop, verify_signature (ES*, RS*)", []string{"time", "github.com/phantom-token/envoy-phantom-token/internal/dpop"},
		`p, _ := dpop.Parse(s, dpop.Algorithms, func(k dpop.Key, in, sig []byte) bool { a, _ := dpop.VerifySignatureArgs(k, in, sig); r, err := proxywasm.CallForeignFunction("verify_signature", a); return err == nil && dpop.VerifySignatureValid(r) })
	sink = p.Check(s, s, s, time.Now(), time.Minute); sink = dpop.ValidNonce(b, s, time.Now(), time.Minute); sink = dpop.NewNonce(b, time.Now())`},
	{"internal/dpop, the filter's (+ pss, ed25519)", []string{"time", "crypto/ed25519", "github.com/phantom-token/envoy-phantom-token/internal/dpop", "github.com/phantom-token/envoy-phantom-token/internal/dpop/pss"},
		`p, _ := dpop.Parse(s, dpop.Algorithms, func(k dpop.Key, in, sig []byte) bool {
		switch k.Alg {
		case "PS256", "PS384", "PS512":
			return pss.Verify(k, in, sig)
		case "EdDSA":
			return len(k.X) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(ed25519.PublicKey(k.X), in, sig)
		}
		a, _ := dpop.VerifySignatureArgs(k, in, sig); r, err := proxywasm.CallForeignFunction("verify_signature", a); return err == nil && dpop.VerifySignatureValid(r) })
	sink = p.Check(s, s, s, time.Now(), time.Minute); sink = dpop.ValidNonce(b, s, time.Now(), time.Minute); sink = dpop.NewNonce(b, time.Now())`},
	{"internal/dpop, gosig (Go's crypto)", []string{"time", "github.com/phantom-token/envoy-phantom-token/internal/dpop", "github.com/phantom-token/envoy-phantom-token/internal/dpop/gosig"},
		`p, _ := dpop.Parse(s, dpop.Algorithms, gosig.Verify)
	sink = p.Check(s, s, s, time.Now(), time.Minute); sink = dpop.ValidNonce(b, s, time.Now(), time.Minute); sink = dpop.NewNonce(b, time.Now())`},
}

func main() {
	log.SetFlags(0)
	dir, err := os.MkdirTemp(".", ".linkcost-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-46s %10s %10s %10s %10s\n", "no-op module plus", "file B", "+ file", "+ code", "+ data")
	var base sizes
	for i, v := range variants {
		s, err := build(dir, i, v)
		if err != nil {
			log.Fatalf("%s: %v", v.name, err)
		}
		if i == 0 {
			base = s
		}
		fmt.Printf("%-46s %10d %+10d %+10d %+10d\n", v.name, s.file, s.file-base.file, s.code-base.code, s.data-base.data)
	}
}

type sizes struct{ file, code, data int }

func build(dir string, i int, v variant) (sizes, error) {
	pkg := filepath.Join(dir, fmt.Sprintf("v%d", i))
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return sizes{}, err
	}
	var imports strings.Builder
	for _, p := range v.imports {
		fmt.Fprintf(&imports, "\t%q\n", p)
	}
	src := fmt.Sprintf(template, imports.String(), "\t"+v.use)
	if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src), 0o644); err != nil {
		return sizes{}, err
	}
	out := filepath.Join(dir, fmt.Sprintf("v%d.wasm", i))
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./"+filepath.ToSlash(pkg))
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return sizes{}, fmt.Errorf("%v\n%s", err, b)
	}
	m, err := wasmfile.Read(out)
	if err != nil {
		return sizes{}, err
	}
	return sizes{file: m.Size, code: m.Sections["code"], data: m.Sections["data"]}, nil
}
