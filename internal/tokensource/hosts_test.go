package tokensource

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
)

func TestHostAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		allowed   []string
		want      bool
	}{
		{"no list allows every host", "https://a.example.com/t", nil, true},
		{"an empty list allows nothing", "https://a.example.com/t", []string{}, false},
		{"a bare host matches the default port", "https://A.example.com/t", []string{"a.example.com"}, true},
		{"a bare host matches an explicit default port", "https://a.example.com:443/t", []string{"a.example.com"}, true},
		{"a bare host does not match another port", "https://a.example.com:8443/t", []string{"a.example.com"}, false},
		{"host:port matches that port", "https://a.example.com:8443/t", []string{"a.example.com:8443"}, true},
		{"host:port does not match the default port", "https://a.example.com/t", []string{"a.example.com:8443"}, false},
		{"a subdomain is another host", "https://evil.a.example.com/t", []string{"a.example.com"}, false},
		{"IPv6 with port matches", "https://[::1]:8443/t", []string{"[::1]:8443"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(tc.url)
			if got := hostAllowed(tc.allowed, u); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestCredentialsOnlyGoToAllowedHosts(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	secret := &credential.ClientSecret{Secret: "a-good-secret"}
	for _, tc := range []struct {
		name     string
		req      Request
		edit     func(tenant string, doc map[string]any)
		wantHost string
	}{
		{name: "Entra: the configured authority host is checked first", req: f.entraReq("app", secret), wantHost: "localhost:" + f.srv.Port()},
		{name: "generic: the configured token host is checked first", req: f.tokenReq("app", secret), wantHost: "localhost:" + f.srv.Port()},
		{name: "generic: the configured issuer host is checked before discovery", req: f.issuerReq("app", secret), wantHost: "localhost:" + f.srv.Port()},
		{name: "Entra: a discovery document naming another token host is refused", req: f.entraReq("app", secret), edit: pointTo(f.srv.LocalhostURL()), wantHost: "localhost:" + f.srv.Port()},
		{name: "generic: a discovery document naming another token host is refused", req: f.issuerReq("app", secret), edit: pointTo(f.srv.LocalhostURL()), wantHost: "localhost:" + f.srv.Port()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if tc.edit == nil {
				req = onLocalhost(t, req)
			}
			f.srv.EditDiscovery(tc.edit)
			before := f.srv.TokenCalls("app")
			_, err := New(Options{RootCAs: f.srv.CertPool()}).Fetch(context.Background(), req, nil)
			var hna *HostNotAllowedError
			if !errors.As(err, &hna) || hna.Host != tc.wantHost {
				t.Fatalf("got %T %v; want HostNotAllowedError for %s", err, err, tc.wantHost)
			}
			if n := f.srv.TokenCalls("app") - before; n != 0 {
				t.Errorf("token calls = %d, want none", n)
			}
		})
	}
}

func TestTokenRequestsFollowNoRedirect(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	secret := &credential.ClientSecret{Secret: "a-good-secret"}
	for _, mk := range []func(string, credential.Credential) Request{f.entraReq, f.tokenReq} {
		for _, to := range []string{f.srv.URL, f.srv.LocalhostURL()} {
			req := mk("app", secret)
			f.srv.InjectFaults(entraserver.Fault{Status: 307, Location: to + "/" + tenant + "/oauth2/v2.0/token"})
			before := f.srv.TokenCalls("app")
			_, err := New(Options{RootCAs: f.srv.CertPool()}).Fetch(context.Background(), req, nil)
			if e := asError(t, err); e.Code != "redirect" || e.StatusCode != 307 || e.Retryable || e.MetricCode() != "redirect" {
				t.Errorf("redirect to %s: got %+v", to, e)
			}
			if n := f.srv.TokenCalls("app") - before; n != 1 {
				t.Errorf("token calls = %d, want 1", n)
			}
		}
	}
}

func pointTo(base string) func(string, map[string]any) {
	return func(tenant string, doc map[string]any) {
		doc["token_endpoint"] = base + "/" + tenant + "/oauth2/v2.0/token"
	}
}

// onLocalhost moves the request's endpoint to the localhost name while the
// allowed hosts still name 127.0.0.1.
func onLocalhost(t *testing.T, r Request) Request {
	swap := func(s string) string {
		if s == "" {
			return ""
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = "localhost:" + u.Port()
		return u.String()
	}
	r.Authority, r.IssuerURL, r.TokenURL = swap(r.Authority), swap(r.IssuerURL), swap(r.TokenURL)
	return r
}

func TestAllowedLocalhostNameWorks(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	req := onLocalhost(t, f.entraReq("app", &credential.ClientSecret{Secret: "a-good-secret"}))
	req.AllowedHosts = []string{"localhost:" + f.srv.Port()}
	if _, err := f.eng.Fetch(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
}
