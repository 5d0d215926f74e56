package tokensource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
)

func TestEngineValidateAppliesTheSchemePolicy(t *testing.T) {
	secret := &credential.ClientSecret{Secret: "s"}
	gen := func(field, u string) Request {
		r := Request{ClientID: "c", Credential: secret}
		if field == "issuerURL" {
			r.IssuerURL = u
		} else {
			r.TokenURL = u
		}
		return r
	}
	ent := func(u string) Request {
		return Request{Authority: u, ClientID: "c", Scopes: []string{graphScope}, Credential: secret}
	}
	for _, tc := range []struct {
		name     string
		req      Request
		loopback bool
		field    string // "" when allowed
		text     string
	}{
		{"https is allowed", gen("tokenURL", "https://idp.example.com/token"), false, "", ""},
		{"http to 127.0.0.1 needs the flag", gen("tokenURL", "http://127.0.0.1:8080/token"), false, "tokenURL", "--insecure-allow-http-loopback"},
		{"an http issuer on localhost needs the flag", gen("issuerURL", "http://localhost:8080"), false, "issuerURL", "--insecure-allow-http-loopback"},
		{"http to 127.0.0.1 is allowed with the flag", gen("tokenURL", "http://127.0.0.1:8080/token"), true, "", ""},
		{"http to [::1] is allowed with the flag", gen("tokenURL", "http://[::1]:8080/token"), true, "", ""},
		{"http to localhost is allowed with the flag", gen("issuerURL", "http://localhost"), true, "", ""},
		{"http elsewhere is refused even with the flag", gen("tokenURL", "http://idp.example.com/token"), true, "tokenURL", "https"},
		{"http to a loopback-looking name is refused", gen("tokenURL", "http://localhost.example.com/token"), true, "tokenURL", "https"},
		{"an http authority is refused even with the flag", ent("http://127.0.0.1:8080/t"), true, "authority", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := New(Options{AllowHTTPLoopback: tc.loopback})
			err := eng.Validate(tc.req)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Message, tc.text) {
				t.Fatalf("got %v; want field %s mentioning %q", err, tc.field, tc.text)
			}
			if _, ferr := eng.Fetch(context.Background(), tc.req, nil); !errors.As(ferr, &ce) {
				t.Errorf("Fetch did not stop at validation: %v", ferr)
			}
		})
	}
}

func TestPlainHTTPLoopbackIsOptIn(t *testing.T) {
	h := newHostile(t, true)
	for _, req := range []Request{h.tokenReq(), h.issuerReq()} {
		if _, err := New(Options{AllowHTTPLoopback: true}).Fetch(context.Background(), req, nil); err != nil {
			t.Errorf("with the flag: %v", err)
		}
		before := h.calls.Load()
		var ce *ConfigError
		if _, err := New(Options{}).Fetch(context.Background(), req, nil); !errors.As(err, &ce) {
			t.Errorf("without the flag: got %v", err)
		}
		if n := h.calls.Load() - before; n != 0 {
			t.Errorf("%d calls without the flag", n)
		}
	}
}

func TestTheTokenEndpointKeepsTheIssuersScheme(t *testing.T) {
	secure, plain := newHostile(t, false), newHostile(t, true)
	both := []string{secure.host(), plain.host()}
	for _, tc := range []struct {
		name string
		set  func()
		req  Request
		code string
	}{
		{"generic: an https issuer naming an http token endpoint", func() {
			secure.set(&secure.discovery, func(w http.ResponseWriter, r *http.Request) {
				writeDoc(w, plain.srv.URL+"/t/oauth2/v2.0/token", secure.srv.URL)
			})
		}, secure.issuerReq(), "malformed_response"},
		{"generic: an http issuer naming an https token endpoint", func() {
			plain.set(&plain.discovery, func(w http.ResponseWriter, r *http.Request) {
				writeDoc(w, secure.srv.URL+"/t/oauth2/v2.0/token", plain.srv.URL)
			})
		}, plain.issuerReq(), "malformed_response"},
		{"generic: an http loopback issuer naming an http token endpoint elsewhere", func() {
			plain.set(&plain.discovery, func(w http.ResponseWriter, r *http.Request) {
				writeDoc(w, "http://idp.example.com/t/oauth2/v2.0/token", plain.srv.URL)
			})
		}, plain.issuerReq(), "scheme_not_allowed"},
		{"MSAL: tenant metadata naming an http token endpoint", func() {
			secure.set(&secure.discovery, func(w http.ResponseWriter, r *http.Request) {
				writeDoc(w, plain.srv.URL+"/t/oauth2/v2.0/token", secure.srv.URL)
			})
		}, secure.entraReq(), "scheme_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set()
			tc.req.AllowedHosts = both
			pool := secure.pool()
			before := secure.calls.Load() + plain.calls.Load()
			_, err := New(Options{RootCAs: pool, AllowHTTPLoopback: true}).Fetch(context.Background(), tc.req, nil)
			if e := asError(t, err); e.Code != tc.code || e.Retryable {
				t.Errorf("got %+v", e)
			}
			if n := secure.calls.Load() + plain.calls.Load() - before; n != 1 {
				t.Errorf("%d calls, want only the discovery", n)
			}
		})
	}
}

// redirecting sends a discovery request through hops redirects on the same
// host, or to elsewhere on the last one when it is set.
func redirecting(h *hostile, hops int, elsewhere string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("hop"))
		switch {
		case n < hops-1 || (n == hops-1 && elsewhere == ""):
			http.Redirect(w, r, fmt.Sprintf("%s?hop=%d", r.URL.Path, n+1), http.StatusFound)
		case n == hops-1:
			http.Redirect(w, r, elsewhere+r.URL.Path, http.StatusFound)
		default:
			writeDoc(w, h.srv.URL+"/t/oauth2/v2.0/token", h.srv.URL)
		}
	}
}

func TestDiscoveryRedirectsAreBounded(t *testing.T) {
	h, plain := newHostile(t, false), newHostile(t, true)
	localhost := "https://localhost:" + h.srv.URL[strings.LastIndex(h.srv.URL, ":")+1:]
	for _, flow := range []struct {
		name string
		req  func() Request
	}{{"MSAL", h.entraReq}, {"generic", h.issuerReq}} {
		for _, tc := range []struct {
			name      string
			hops      int
			elsewhere string
			check     func(t *testing.T, err error)
		}{
			{"five redirects on the same host are followed", 5, "", func(t *testing.T, err error) {
				if err != nil {
					t.Error(err)
				}
			}},
			{"a sixth is not", 6, "", func(t *testing.T, err error) {
				if e := asError(t, err); e.Code != "redirect" || !strings.Contains(e.Description, "more than 5") {
					t.Errorf("got %v", e)
				}
			}},
			{"a switch to plain http is not followed", 1, plain.srv.URL, func(t *testing.T, err error) {
				if e := asError(t, err); e.Code != "redirect" || !strings.Contains(e.Description, "scheme") {
					t.Errorf("got %v", e)
				}
			}},
			{"a redirect to another host is not followed", 2, localhost, func(t *testing.T, err error) {
				var hna *HostNotAllowedError
				if !errors.As(err, &hna) || hna.ByOperator || !strings.HasPrefix(hna.Host, "localhost:") {
					t.Errorf("got %v", err)
				}
			}},
		} {
			t.Run(flow.name+": "+tc.name, func(t *testing.T) {
				h.set(&h.discovery, redirecting(h, tc.hops, tc.elsewhere))
				req := flow.req()
				req.AllowedHosts = append(req.AllowedHosts, plain.host())
				_, err := h.engine(Options{AllowHTTPLoopback: true}).Fetch(context.Background(), req, nil)
				tc.check(t, err)
				if n := plain.calls.Load(); n != 0 {
					t.Errorf("the plain http server got %d calls", n)
				}
			})
		}
	}
}

func TestIssuerHostAllowed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		url     string
		ceiling []string
		want    bool
	}{
		{"no ceiling allows every host", "https://a.example.com/t", nil, true},
		{"an empty ceiling allows every host", "https://a.example.com/t", []string{}, true},
		{"a host matches its default port", "https://Login.Example.com/t", []string{"login.example.com"}, true},
		{"a host does not match another port", "https://login.example.com:8443/t", []string{"login.example.com"}, false},
		{"host:port matches that port", "https://login.example.com:8443/t", []string{"login.example.com:8443"}, true},
		{"a wildcard matches one label", "https://dev-1.okta.com/t", []string{"*.okta.com"}, true},
		{"a wildcard matches several labels", "https://a.b.okta.com/t", []string{"*.okta.com"}, true},
		{"a wildcard is case-insensitive", "https://DEV.OKTA.COM/t", []string{"*.Okta.com"}, true},
		{"a wildcard never matches the apex", "https://okta.com/t", []string{"*.okta.com"}, false},
		{"a wildcard does not match a longer name", "https://evilokta.com/t", []string{"*.okta.com"}, false},
		{"a wildcard does not match another port", "https://dev.okta.com:8443/t", []string{"*.okta.com"}, false},
		{"a wildcard with a port matches that port", "https://dev.okta.com:8443/t", []string{"*.okta.com:8443"}, true},
		{"a wildcard with a port does not match the default", "https://dev.okta.com/t", []string{"*.okta.com:8443"}, false},
		{"a wildcard does not match an empty label", "https://.okta.com/t", []string{"*.okta.com"}, false},
		{"a wildcard does not match IP addresses", "https://10.0.0.1/t", []string{"*.0.0.1"}, false},
		{"IPv6 with a port", "https://[::1]:8443/t", []string{"[::1]:8443"}, true},
		{"an invalid entry matches nothing", "https://a.example.com/t", []string{"https://a.example.com"}, false},
		{"a bare star matches nothing", "https://a.example.com/t", []string{"*"}, false},
		{"a star inside a name matches nothing", "https://a.b.example.com/t", []string{"a.*.example.com"}, false},
		{"any entry may match", "https://b.example.com/t", []string{"a.example.com", "b.example.com"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := issuerHostAllowed(tc.ceiling, u); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestValidateAllowedIssuerHosts(t *testing.T) {
	for _, ok := range [][]string{nil, {"login.microsoftonline.com"}, {"*.okta.com", "idp.example.com:8443", "*.example.org:8443", "[::1]:8443", "127.0.0.1"}} {
		if err := ValidateAllowedIssuerHosts(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "*.", "**.okta.com", "a.*.com", "*okta.com", "https://okta.com", "okta.com/path", "user@okta.com", "*.10.0.0.1", "*..okta.com", "okta.com:port"} {
		if err := ValidateAllowedIssuerHosts([]string{bad}); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestTheOperatorCeilingNarrowsEveryRequest(t *testing.T) {
	h := newHostile(t, false)
	port := h.srv.URL[strings.LastIndex(h.srv.URL, ":")+1:]
	local := "localhost:" + port
	for _, flow := range []struct {
		name string
		req  func() Request
	}{{"MSAL", h.entraReq}, {"generic", h.issuerReq}} {
		t.Run(flow.name+": an endpoint outside the ceiling is refused before any call", func(t *testing.T) {
			eng := h.engine(Options{AllowedIssuerHosts: []string{local}})
			err := eng.Validate(flow.req())
			var hna *HostNotAllowedError
			if !errors.As(err, &hna) || !hna.ByOperator || hna.Host != h.host() || !strings.Contains(err.Error(), "operator's allowed issuer hosts") {
				t.Fatalf("Validate: got %v", err)
			}
			before := h.calls.Load()
			if _, err := eng.Fetch(context.Background(), flow.req(), nil); !errors.As(err, &hna) || !hna.ByOperator {
				t.Errorf("Fetch: got %v", err)
			}
			if n := h.calls.Load() - before; n != 0 {
				t.Errorf("%d calls", n)
			}
		})
		t.Run(flow.name+": a request cannot widen the ceiling", func(t *testing.T) {
			h.set(&h.discovery, func(w http.ResponseWriter, r *http.Request) {
				writeDoc(w, "https://"+local+"/t/oauth2/v2.0/token", h.srv.URL)
			})
			defer h.set(&h.discovery, nil)
			req := flow.req()
			req.AllowedHosts = []string{h.host(), local}
			before := h.calls.Load()
			_, err := h.engine(Options{AllowedIssuerHosts: []string{h.host()}}).Fetch(context.Background(), req, nil)
			var hna *HostNotAllowedError
			if !errors.As(err, &hna) || !hna.ByOperator || hna.Host != local {
				t.Fatalf("got %v", err)
			}
			if n := h.calls.Load() - before; n != 1 {
				t.Errorf("%d calls, want only the discovery", n)
			}
		})
		t.Run(flow.name+": a request can narrow the ceiling", func(t *testing.T) {
			req := flow.req()
			req.AllowedHosts = []string{local}
			_, err := h.engine(Options{AllowedIssuerHosts: []string{h.host(), local}}).Fetch(context.Background(), req, nil)
			var hna *HostNotAllowedError
			if !errors.As(err, &hna) || hna.ByOperator || hna.Host != h.host() {
				t.Fatalf("got %v", err)
			}
		})
		t.Run(flow.name+": within both, the call goes through", func(t *testing.T) {
			for _, allowed := range [][]string{nil, {h.host()}} {
				req := flow.req()
				req.AllowedHosts = allowed
				if _, err := h.engine(Options{AllowedIssuerHosts: []string{"localhost:1", h.host()}}).Fetch(context.Background(), req, nil); err != nil {
					t.Errorf("AllowedHosts %q: %v", allowed, err)
				}
			}
		})
	}
}
