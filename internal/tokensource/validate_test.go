package tokensource

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
)

func TestValidateAppliesTheEntraScopeRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scopes []string
		ok     bool
	}{
		{"Microsoft Graph .default is accepted", []string{"https://graph.microsoft.com/.default"}, true},
		{"an api:// application ID URI is accepted", []string{"api://11111111-2222-3333-4444-555555555555/.default"}, true},
		{"ARM with its double slash is accepted", []string{"https://management.core.windows.net//.default"}, true},
		{"a bare application ID is accepted", []string{"11111111-2222-3333-4444-555555555555/.default"}, true},
		{"a delegated scope is refused", []string{"User.Read"}, false},
		{"a resource URL without .default is refused", []string{"https://graph.microsoft.com/User.Read"}, false},
		{"two resources are refused", []string{"https://graph.microsoft.com/.default", "https://vault.azure.net/.default"}, false},
		{"no scope is refused", nil, false},
		{"a bare .default is refused", []string{"/.default"}, false},
		{"a resource that is neither URI nor GUID is refused", []string{"graph/.default"}, false},
		{"openid on top is refused", []string{"https://graph.microsoft.com/.default", "openid"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{Authority: "https://login.microsoftonline.com/contoso", ClientID: "c", Scopes: tc.scopes, Credential: &credential.ClientSecret{Secret: "s"}}
			err := r.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v", err)
			}
			var ce *ConfigError
			if err != nil && (!errors.As(err, &ce) || ce.Field != "scopes" || !strings.Contains(ce.Message, "<resource>/.default")) {
				t.Errorf("want a ConfigError naming the rule, got %v", err)
			}
		})
	}
}

func TestValidateRefusesBadRequests(t *testing.T) {
	secret := &credential.ClientSecret{Secret: "s"}
	ent := func(mod func(*Request)) Request {
		r := Request{Authority: "https://login.microsoftonline.com/contoso", ClientID: "c", Scopes: []string{graphScope}, Credential: secret}
		mod(&r)
		return r
	}
	gen := func(mod func(*Request)) Request {
		r := Request{TokenURL: "https://idp.example.com/token", ClientID: "c", Credential: secret}
		mod(&r)
		return r
	}
	ec := ecCert(t)
	for _, tc := range []struct {
		name, field, text string
		req               Request
	}{
		{"an EC key is refused for Entra because MSAL Go signs with RSA only", "credential", "RSA keys only", ent(func(r *Request) { r.Credential = ec })},
		{"no endpoint is refused", "authority", "exactly one", gen(func(r *Request) { r.TokenURL = "" })},
		{"two endpoints are refused", "authority", "exactly one", gen(func(r *Request) { r.IssuerURL = "https://idp.example.com" })},
		{"plain http is refused", "tokenURL", "https", gen(func(r *Request) { r.TokenURL = "http://idp.example.com/token" })},
		{"an authority without tenant is refused", "authority", "tenant", ent(func(r *Request) { r.Authority = "https://login.microsoftonline.com/" })},
		{"a missing client ID is refused", "clientID", "required", gen(func(r *Request) { r.ClientID = " " })},
		{"a missing credential is refused", "credential", "required", gen(func(r *Request) { r.Credential = nil })},
		{"an empty secret is refused", "credential", "empty", gen(func(r *Request) { r.Credential = &credential.ClientSecret{} })},
		{"an assertion without source is refused", "credential", "missing", gen(func(r *Request) { r.Credential = &credential.Assertion{ID: "x"} })},
		{"a key that does not match the certificate is refused", "credential", "does not match", gen(func(r *Request) {
			c := rsaCert(t, 0)
			c.Key = testRSAKey(t, 1)
			r.Credential = c
		})},
		{"ES256 with an RSA key is refused", "credential", "does not fit", gen(func(r *Request) {
			c := rsaCert(t, 0)
			c.Algorithm = "ES256"
			r.Credential = c
		})},
		{"extra parameters are refused for Entra", "extraParameters", "not supported", ent(func(r *Request) { r.ExtraParameters = map[string]string{"a": "b"} })},
		{"an extra parameter may not override the grant", "extraParameters", "cannot be overridden", gen(func(r *Request) { r.ExtraParameters = map[string]string{"client_secret": "x"} })},
		{"a region is refused for generic issuers", "azureRegion", "authority", gen(func(r *Request) { r.AzureRegion = "westeurope" })},
		{"region auto-detection is refused", "azureRegion", "automatic", ent(func(r *Request) { r.AzureRegion = "TryAutoDetect" })},
		{"a URL in allowed hosts is refused", "allowedHosts", "host:port", gen(func(r *Request) { r.AllowedHosts = []string{"https://idp.example.com"} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Error(), tc.text) {
				t.Fatalf("got %v; want field %s mentioning %q", err, tc.field, tc.text)
			}
			if _, ferr := New(Options{}).Fetch(context.Background(), tc.req, nil); !errors.As(ferr, &ce) {
				t.Errorf("Fetch did not stop at validation: %v", ferr)
			}
		})
	}
}

func TestCacheKey(t *testing.T) {
	base := Request{TokenURL: "https://idp.example.com/token", ClientID: "c", Scopes: []string{"a", "b"}, Credential: &credential.ClientSecret{Secret: "s"}, ExtraParameters: map[string]string{"x": "1"}}
	same := base
	same.Scopes = []string{"b", "a"}
	same.AllowedHosts = []string{"idp.example.com"}
	if base.CacheKey() != same.CacheKey() {
		t.Error("scope order or allowed hosts changed the key")
	}
	for name, mod := range map[string]func(*Request){
		"a rotated secret":       func(r *Request) { r.Credential = &credential.ClientSecret{Secret: "s2"} },
		"another client":         func(r *Request) { r.ClientID = "d" },
		"another scope":          func(r *Request) { r.Scopes = []string{"a"} },
		"another extra value":    func(r *Request) { r.ExtraParameters = map[string]string{"x": "2"} },
		"another token endpoint": func(r *Request) { r.TokenURL = "https://other.example.com/token" },
	} {
		r := base
		mod(&r)
		if r.CacheKey() == base.CacheKey() {
			t.Errorf("%s kept the key", name)
		}
	}
	var nilSecret *credential.ClientSecret
	_ = Request{Credential: nilSecret}.CacheKey() // must not panic
}
