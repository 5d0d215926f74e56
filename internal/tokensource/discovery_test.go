package tokensource

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
)

func TestADiscoveryDocumentNamingAnotherIssuerIsRefused(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	secret := &credential.ClientSecret{Secret: "a-good-secret"}
	configured := f.srv.Issuer(tenant)
	for _, tc := range []struct {
		name, issuer string
	}{
		{"another host", "https://login.example.com/" + tenant + "/v2.0"},
		{"another tenant on the same host", f.srv.Issuer("fabrikam")},
		{"a prefix of the configured issuer", f.srv.URL + "/" + tenant},
		{"a longer path", configured + "/x"},
		{"another case", strings.ToUpper(configured)},
		{"two trailing slashes", configured + "//"},
		{"no issuer at all", ""},
		{"a long hostile issuer", "https://evil.example/\x07\n" + strings.Repeat("eyJhbGciOiJub25lIn0.e30.sig ", 400)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.EditDiscovery(func(_ string, doc map[string]any) {
				if tc.issuer == "" {
					delete(doc, "issuer")
				} else {
					doc["issuer"] = tc.issuer
				}
			})
			t.Cleanup(func() { f.srv.EditDiscovery(nil) })
			before := f.srv.TokenCalls("app")
			_, err := New(Options{RootCAs: f.srv.CertPool()}).Fetch(context.Background(), f.issuerReq("app", secret), nil)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != "issuerURL" || !strings.Contains(ce.Message, "not this issuerURL") || !strings.Contains(ce.Message, "§4.3") {
				t.Fatalf("Fetch = %T %v; want an issuerURL ConfigError naming the rule", err, err)
			}
			if n := f.srv.TokenCalls("app") - before; n != 0 {
				t.Errorf("%d token calls after a mismatched issuer, want none", n)
			}
			msg := err.Error()
			if len(msg) > 400 || strings.ContainsAny(msg, "\n\a") || strings.Contains(msg, "eyJhbGciOiJub25lIn0.e30") {
				t.Errorf("message is not short, single-line and scrubbed (%d bytes): %q", len(msg), msg)
			}
		})
	}
}

func TestTheDiscoveryIssuerMayDifferByOneTrailingSlash(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	secret := &credential.ClientSecret{Secret: "a-good-secret"}
	base := f.srv.Issuer(tenant)
	for _, tc := range []struct{ name, configured, doc string }{
		{"identical", base, base},
		{"the document adds a slash", base, base + "/"},
		{"the configuration adds a slash", base + "/", base},
		{"both with a slash", base + "/", base + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.EditDiscovery(func(_ string, doc map[string]any) { doc["issuer"] = tc.doc })
			t.Cleanup(func() { f.srv.EditDiscovery(nil) })
			req := f.issuerReq("app", secret)
			req.IssuerURL = tc.configured
			if _, err := New(Options{RootCAs: f.srv.CertPool()}).Fetch(context.Background(), req, nil); err != nil {
				t.Fatalf("issuerURL %q with document issuer %q: %v", tc.configured, tc.doc, err)
			}
		})
	}
}
