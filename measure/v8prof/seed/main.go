// Command seed prints, as JSON, what the V8 profile's host (measure/v8prof)
// needs to make every request a cache hit: the plugin configuration, the
// opaque token the client sends, the JWT the filter must put in its place and
// the shared data that holds the token's record, as another worker's answer
// would have (the same record as measure/hostcount's). The encoding and the
// keys are the filter's own (internal/cache), so the JavaScript host never
// copies them.
//
//	cd measure && go run ./v8prof/seed > seed.json
package main

import (
	"encoding/json"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/phantom-token/envoy-phantom-token/internal/cache"
	"github.com/phantom-token/envoy-phantom-token/internal/config"
	"github.com/phantom-token/envoy-phantom-token/internal/tables"
	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

// token is the opaque token of every request: made up, never a secret.
const token = "opaque-v8prof-2YotnFZFEjr1zCsicMW"

// Seed is what the host reads.
type Seed struct {
	Configuration string `json:"configuration"`
	Token         string `json:"token"`
	JWT           string `json:"jwt"`
	// Shared is the shared data to set after proxy_on_configure (whose
	// start empties the sets of the table it takes); values in base64
	// (encoding/json's []byte).
	Shared []Shared `json:"shared"`
}

type Shared struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func main() {
	log.SetFlags(0)
	s, err := seed(time.Now())
	if err != nil {
		log.Fatal(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		log.Fatal(err)
	}
}

// seed puts the token's record in the cache set it belongs to in table 0
// (the first plugin's, see internal/tables), valid for an hour from now.
func seed(now time.Time) (Seed, error) {
	conf, err := json.Marshal(map[string]any{"introspection_url": "https://ids.example/introspect", "cluster": "ids",
		"client_id": "gw", "client_secret": "s3cret", "timeout": "2s", "cache": true, "cache_max_entries": 10000})
	if err != nil {
		return Seed{}, err
	}
	cfg, err := config.Parse(conf, func(string) string { return "" })
	if err != nil {
		return Seed{}, err
	}
	exp := now.Add(time.Hour)
	jwt := testjwt.Make(`{"sub":"alice","scope":"read","exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`)
	hash := cache.Hash(cfg.CacheNamespace, token)
	key := cache.Keys(tables.ID(0), hash, cfg.CacheMaxEntries)[0]
	value := cache.Encode([]cache.Record{{Kind: cache.Active, Hash: hash, Expires: exp, JWT: jwt}})
	return Seed{Configuration: string(conf), Token: token, JWT: jwt, Shared: []Shared{{Key: key, Value: value}}}, nil
}
