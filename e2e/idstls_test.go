package e2e

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/phantom-token/envoy-phantom-token/e2e/fixtures"
	"github.com/phantom-token/envoy-phantom-token/e2e/harness"
)

// The identity server over TLS (docs/configuration.md, "An identity server
// over TLS"): the Go identity server also listens with TLS, and each of these
// clusters reaches it with an UpstreamTlsContext; the scenario of the same
// name introspects through it at an https URL.
const (
	// The identity server's CA, its name as SNI and as the SAN required.
	scIdSTLS = "ids-tls"
	// The same, trusting another CA.
	scIdSTLSWrongCA = "ids-tls-wrong-ca"
	// The identity server's CA, at a listener whose certificate, of that
	// CA, is for another name.
	scIdSTLSWrongName = "ids-tls-wrong-name"
	// A listener that requires a client certificate of the CA: the cluster
	// presents the gateway's, and the filter authenticates with it alone
	// (client_auth tls_client_auth, RFC 8705 §2.1: client_id in the body,
	// no secret).
	scIdSMTLS = "ids-mtls"
	// The same listener, the cluster without a client certificate.
	scIdSMTLSNoCert = "ids-mtls-no-cert"
	// The same listener and certificate, with client_secret_basic too.
	scIdSMTLSBasic = "ids-mtls-basic"
)

// idsServerName is the identity server's name in its certificate, the SNI and
// the SAN the clusters require, and the host of the https introspection URL.
const idsServerName = "ids.internal"

// idsTLS holds the identity server's PKI (CA "ids", client "gateway") and,
// by cluster, the address of the TLS listener it reaches and its TLS context.
var idsTLS struct {
	pki      *fixtures.PKI
	clusters map[string]string
	tls      map[string]harness.ClusterTLS
}

// idsTLSSetUp makes the PKIs in dir and starts the Go identity server's TLS
// listeners; it needs suite.ids.
func idsTLSSetUp(dir string) error {
	pki, err := fixtures.NewPKI(dir, "ids", "gateway")
	if err != nil {
		return err
	}
	wrongCA, err := fixtures.NewPKI(dir, "not-ids")
	if err != nil {
		return err
	}
	server, err := pki.IssueServer(dir, "ids-internal", idsServerName)
	if err != nil {
		return err
	}
	elsewhere, err := pki.IssueServer(dir, "ids-elsewhere", "elsewhere.internal")
	if err != nil {
		return err
	}
	listen := func(cert *fixtures.Cert, requireClientCert bool) (string, error) {
		config := &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
		if requireClientCert {
			config.ClientAuth, config.ClientCAs = tls.RequireAndVerifyClientCert, pki.Pool()
		}
		addr, err := suite.ids.ServeTLS(fixtures.AnyPort, config)
		if err != nil {
			return "", err
		}
		return addr.String(), nil
	}
	serverOnly, err := listen(server, false)
	if err != nil {
		return err
	}
	otherName, err := listen(elsewhere, false)
	if err != nil {
		return err
	}
	clientCerts, err := listen(server, true)
	if err != nil {
		return err
	}
	gateway := pki.Clients["gateway"]
	idsTLS.pki = pki
	idsTLS.clusters = map[string]string{
		scIdSTLS: serverOnly, scIdSTLSWrongCA: serverOnly, scIdSTLSWrongName: otherName,
		scIdSMTLS: clientCerts, scIdSMTLSNoCert: clientCerts, scIdSMTLSBasic: clientCerts,
	}
	idsTLS.tls = map[string]harness.ClusterTLS{
		scIdSTLS:          {CAFile: pki.CAFile, ServerName: idsServerName},
		scIdSTLSWrongCA:   {CAFile: wrongCA.CAFile, ServerName: idsServerName},
		scIdSTLSWrongName: {CAFile: pki.CAFile, ServerName: idsServerName},
		scIdSMTLS:         {CAFile: pki.CAFile, ServerName: idsServerName, CertFile: gateway.CertFile, KeyFile: gateway.KeyFile},
		scIdSMTLSNoCert:   {CAFile: pki.CAFile, ServerName: idsServerName},
		scIdSMTLSBasic:    {CAFile: pki.CAFile, ServerName: idsServerName, CertFile: gateway.CertFile, KeyFile: gateway.KeyFile},
	}
	return nil
}

// idsTLSScenarios introspect at https://ids.internal/… through the cluster
// of their name.
func idsTLSScenarios() []harness.Scenario {
	var s []harness.Scenario
	for _, name := range []string{scIdSTLS, scIdSTLSWrongCA, scIdSTLSWrongName, scIdSMTLS, scIdSMTLSNoCert, scIdSMTLSBasic} {
		keys := map[string]any{
			"introspection_url": "https://" + idsServerName + fixtures.IntrospectionPath,
			"cluster":           name,
			"timeout":           "2s",
		}
		if name == scIdSMTLS || name == scIdSMTLSNoCert {
			keys["client_auth"], keys["client_secret"] = "tls_client_auth", nil
		}
		s = append(s, harness.Scenario{Name: name, Plugin: plugin(keys)})
	}
	return s
}

// TestIdentityServerOverTLS: the filter introspects over TLS through the
// cluster's UpstreamTlsContext. With the identity server's CA and name the
// API gets the JWT, and the identity server saw the call on its TLS listener
// with the SNI (and, where it requires one, the gateway's client certificate,
// RFC 8705 §2.1). A certificate of another CA or for another name, or no
// client certificate where one is required, fails the handshake: 502, nothing
// reaches the identity server's endpoint or the API, and the cluster's ssl
// stat counts it.
func TestIdentityServerOverTLS(t *testing.T) {
	gateway := idsTLS.pki.Clients["gateway"]
	for _, tc := range []struct {
		name     string
		scenario string
		status   int
		// clientCert is the certificate the identity server must have seen
		// (200 rows); nil for none.
		clientCert *fixtures.Cert
		// basic: the call authenticated with HTTP Basic, else with its
		// certificate alone and client_id in the body (200 rows).
		basic bool
		// refusedBy is the cluster's stat that counts the failed handshake
		// (502 rows).
		refusedBy string
	}{
		{"its CA and name: the API gets the JWT", scIdSTLS, http.StatusOK, nil, true, ""},
		{"another CA: 502", scIdSTLSWrongCA, http.StatusBadGateway, nil, true, "ssl.fail_verify_error"},
		{"a certificate for another name: 502", scIdSTLSWrongName, http.StatusBadGateway, nil, true, "ssl.fail_verify_san"},
		{"tls_client_auth, the gateway's certificate: the API gets the JWT", scIdSMTLS, http.StatusOK, gateway, false, ""},
		{"tls_client_auth, no client certificate: 502", scIdSMTLSNoCert, http.StatusBadGateway, nil, false, "ssl.connection_error"},
		{"a client certificate and Basic too: the API gets the JWT", scIdSMTLSBasic, http.StatusOK, gateway, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stat := "cluster." + tc.scenario + "." + tc.refusedBy
			before := 0
			if tc.refusedBy != "" {
				var err error
				if before, err = suite.envoy.Counter(testCtx(t), stat); err != nil {
					t.Fatal(err)
				}
			}
			tok := suite.ids.Issue(fixtures.TokenOptions{})
			r := call(t, client, tc.scenario, http.MethodGet, bearer(tok), "")
			calls := suite.ids.IntrospectionsOf(tok)

			if tc.status != http.StatusOK {
				expectLocal(t, r, tc.status, body5xx)
				if len(calls) != 0 {
					t.Errorf("the identity server answered %d introspections, want none", len(calls))
				}
				after, err := suite.envoy.Counter(testCtx(t), stat)
				if err != nil {
					t.Fatal(err)
				}
				if after <= before {
					t.Errorf("%s went from %d to %d, want it counted", stat, before, after)
				}
				return
			}
			if r.status != http.StatusOK || len(r.upstream) != 1 {
				t.Fatalf("status %d, %d upstream requests (body %q); want 200 and 1", r.status, len(r.upstream), r.body)
			}
			jwt := suite.ids.JWTOf(tok)
			if got := r.upstream[0].Header.Values("Authorization"); len(got) != 1 || jwt == "" || got[0] != "Bearer "+jwt {
				t.Errorf("the API's Authorization is not [Bearer <the identity server's JWT>] (%d values)", len(got))
			}
			if len(calls) != 1 || calls[0].TLS == nil || calls[0].Local != idsTLS.clusters[tc.scenario] {
				t.Fatalf("%d introspections (TLS %v), want one over TLS at %s", len(calls), len(calls) == 1 && calls[0].TLS != nil, idsTLS.clusters[tc.scenario])
			}
			_, _, basic := (&http.Request{Header: calls[0].Header}).BasicAuth()
			if form := calls[0].Form; basic != tc.basic || !tc.basic && (len(form["client_id"]) != 1 || form.Get("client_id") != gatewayID) {
				t.Errorf("Basic credentials %v, client_id in the body %q; want Basic %v", basic, form["client_id"], tc.basic)
			}
			st := calls[0].TLS
			if st.ServerName != idsServerName {
				t.Errorf("SNI %q, want %q", st.ServerName, idsServerName)
			}
			switch {
			case tc.clientCert == nil && len(st.PeerCertificates) != 0:
				t.Errorf("the identity server got %d client certificates, want none", len(st.PeerCertificates))
			case tc.clientCert != nil && (len(st.PeerCertificates) != 1 || !bytes.Equal(st.PeerCertificates[0].Raw, tc.clientCert.DER)):
				t.Errorf("the identity server got %d client certificates, want the gateway's", len(st.PeerCertificates))
			}
		})
	}
}
