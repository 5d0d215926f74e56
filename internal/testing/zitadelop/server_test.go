package zitadelop_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/testcert"
	"github.com/token-operator/token-operator/internal/testing/zitadelop"
)

// The test server must be as strict as a real one, or the interop tests
// prove nothing: each client authenticates only with its registered method,
// and a client assertion is checked for key, audience, expiry and iss = sub.
func TestTheServerRefusesWhatARealServerRefuses(t *testing.T) {
	bin, err := zitadelop.BinaryPath()
	if err != nil {
		t.Fatalf("no zitadelop binary (a failure, not a skip): %v", err)
	}
	key, other := testcert.RSA(t, 2048), testcert.RSA(t, 2048)
	cert := testcert.SelfSigned(t, key, "client")
	jwk := hydra.VerificationKey(cert, "RS256")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := zitadelop.Start(ctx, bin, zitadelop.Options{AssertionAudienceIsTokenURL: true, Clients: []zitadelop.Client{
		{ID: "basic", Secret: "s3cret", AuthMethod: "client_secret_basic", Scopes: []string{"read"}},
		{ID: "post", Secret: "s3cret", AuthMethod: "client_secret_post", Scopes: []string{"read"}},
		{ID: "jwt", Secret: "s3cret", AuthMethod: "private_key_jwt", Scopes: []string{"read"}, Keys: []jose.JSONWebKey{jwk}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs, MinVersion: tls.VersionTLS12}}}

	assertion := func(signer crypto.Signer, mutate func(*jwt.Claims)) string {
		now := time.Now()
		c := jwt.Claims{Issuer: "jwt", Subject: "jwt", Audience: jwt.Audience{srv.TokenURL()}, ID: fmt.Sprint(now.UnixNano()),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
		if mutate != nil {
			mutate(&c)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signer}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", jwk.KeyID))
		if err != nil {
			t.Fatal(err)
		}
		out, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	withAssertion := func(a string) url.Values {
		return form("client_id", "jwt", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", a)
	}
	cases := []struct {
		name       string
		basic      [2]string // id and secret for the Authorization header
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{name: "client_secret_basic", basic: [2]string{"basic", "s3cret"}, form: form(), wantStatus: 200},
		{name: "client_secret_post", form: form("client_id", "post", "client_secret", "s3cret"), wantStatus: 200},
		{name: "private_key_jwt", form: withAssertion(assertion(key, nil)), wantStatus: 200},
		{name: "wrong secret", basic: [2]string{"basic", "wrong"}, form: form(), wantStatus: 400, wantError: "invalid_client"},
		{name: "unknown client", basic: [2]string{"nobody", "s3cret"}, form: form(), wantStatus: 400, wantError: "invalid_client"},
		{name: "a basic client posting its secret", form: form("client_id", "basic", "client_secret", "s3cret"), wantStatus: 400, wantError: "invalid_client"},
		{name: "a post client using basic", basic: [2]string{"post", "s3cret"}, form: form(), wantStatus: 400, wantError: "invalid_client"},
		{name: "a private_key_jwt client using a secret", basic: [2]string{"jwt", "s3cret"}, form: form(), wantStatus: 400, wantError: "invalid_client"},
		{name: "an assertion signed by another key", form: withAssertion(assertion(other, nil)), wantStatus: 400, wantError: "invalid_client"},
		{name: "an assertion for the issuer, not the token URL", form: withAssertion(assertion(key, func(c *jwt.Claims) { c.Audience = jwt.Audience{srv.IssuerURL()} })), wantStatus: 400, wantError: "invalid_client"},
		{name: "an expired assertion", form: withAssertion(assertion(key, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute)) })), wantStatus: 400, wantError: "invalid_client"},
		{name: "an assertion whose iss is not its sub", form: withAssertion(assertion(key, func(c *jwt.Claims) { c.Subject = "basic" })), wantStatus: 400, wantError: "invalid_client"},
		{name: "a scope the client lacks", basic: [2]string{"basic", "s3cret"}, form: form("scope", "admin"), wantStatus: 400, wantError: "invalid_scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.TokenURL(), strings.NewReader(tc.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic[0] != "" {
				req.SetBasicAuth(url.QueryEscape(tc.basic[0]), url.QueryEscape(tc.basic[1]))
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var out struct {
				Error       string `json:"error"`
				AccessToken string `json:"access_token"`
			}
			_ = json.Unmarshal(b, &out)
			if resp.StatusCode != tc.wantStatus || out.Error != tc.wantError {
				t.Fatalf("HTTP %d %s, want %d with error %q", resp.StatusCode, b, tc.wantStatus, tc.wantError)
			}
			if tc.wantStatus == 200 {
				if _, err := srv.VerifyAccessToken(ctx, out.AccessToken); err != nil {
					t.Errorf("the access token does not verify: %v", err)
				}
			}
		})
	}
	if t.Failed() {
		t.Logf("server log:\n%s", srv.Logs())
	}
}
