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
	"slices"
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

// Token exchange (RFC 8693): the server's own access tokens and JWTs of a
// trusted issuer become access tokens for the exchanging client; anything
// else is refused.
func TestTheServerExchangesTokens(t *testing.T) {
	bin, err := zitadelop.BinaryPath()
	if err != nil {
		t.Fatalf("no zitadelop binary (a failure, not a skip): %v", err)
	}
	const foreignIssuer, foreignAudience = "https://kubernetes.default.svc", "zitadelop"
	trusted, untrusted := testcert.EC(t), testcert.EC(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := zitadelop.Start(ctx, bin, zitadelop.Options{
		Clients: []zitadelop.Client{
			{ID: "app", Secret: "s3cret", AuthMethod: "client_secret_basic", Scopes: []string{"read"}},
			{ID: "exchanger", Secret: "s3cret", AuthMethod: "client_secret_basic", Scopes: []string{"read"}},
		},
		SubjectIssuers: []zitadelop.SubjectIssuer{{Issuer: foreignIssuer, Audience: foreignAudience,
			Keys: []jose.JSONWebKey{{Key: trusted.Public(), KeyID: "sa-key", Algorithm: "ES256", Use: "sig"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	d, err := srv.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange") {
		t.Errorf("discovery's grant types %v lack token exchange", d.GrantTypes)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs, MinVersion: tls.VersionTLS12}}}
	call := func(t *testing.T, id string, form url.Values) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, "s3cret")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out.Error, out.AccessToken
	}
	foreign := func(key crypto.Signer, aud string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "sa-key"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		out, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: foreignIssuer, Subject: "system:serviceaccount:apps:worker", Audience: jwt.Audience{aud},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	exchange := func(subject, typ string, extra ...string) url.Values {
		v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject}, "subject_token_type": {typ}, "scope": {"read"}}
		for i := 0; i < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	status, _, own := call(t, "app", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if status != 200 {
		t.Fatalf("client credentials: HTTP %d", status)
	}
	const accessType, jwtType = "urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"
	cases := []struct {
		name      string
		form      url.Values
		wantError string
		wantSub   string
	}{
		{name: "the server's own access token", form: exchange(own, accessType), wantSub: "app"},
		{name: "a JWT of the trusted issuer", form: exchange(foreign(trusted, foreignAudience), jwtType), wantSub: "system:serviceaccount:apps:worker"},
		{name: "a JWT signed by another key", form: exchange(foreign(untrusted, foreignAudience), jwtType), wantError: "invalid_request"},
		{name: "a JWT for another audience", form: exchange(foreign(trusted, "someone-else"), jwtType), wantError: "invalid_request"},
		{name: "a garbled access token", form: exchange(own[:len(own)-4]+"AAAA", accessType), wantError: "invalid_request"},
		{name: "an ID token asked for", form: exchange(own, accessType, "requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), wantError: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, token := call(t, "exchanger", tc.form)
			if tc.wantError != "" {
				if status != 400 || code != tc.wantError {
					t.Fatalf("HTTP %d %q, want 400 %q", status, code, tc.wantError)
				}
				return
			}
			if status != 200 {
				t.Fatalf("HTTP %d %q, want 200", status, code)
			}
			c, err := srv.VerifyAccessToken(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != tc.wantSub || c.ClientID != "exchanger" {
				t.Errorf("sub %q client_id %q, want %q and exchanger", c.Subject, c.ClientID, tc.wantSub)
			}
		})
	}
	if t.Failed() {
		t.Logf("server log:\n%s", srv.Logs())
	}
}
