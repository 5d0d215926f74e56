package tokensource

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	clocktesting "k8s.io/utils/clock/testing"
	"software.sslmate.com/src/go-pkcs12"
)

func TestFetchSucceedsForEveryFlowAndCredential(t *testing.T) {
	now := time.Now().Truncate(time.Second) // MSAL signs with the real clock
	clk := clocktesting.NewFakePassiveClock(now)
	f := newFixture(t, Options{Clock: clk})
	f.srv.SetClock(clk) // assertions are checked against the same time
	rsa0, rsa1, ec := rsaCert(t, 0), rsaCert(t, 1), ecCert(t)
	ps := *rsa1
	ps.Algorithm = "PS256"
	x5c := *rsa1
	x5c.SendX5C = true
	f.srv.AddApp(entraserver.App{ClientID: "secret-app", Secrets: []string{weirdSecret}, ExpiresIn: 3600, RefreshIn: 1800})
	f.srv.AddApp(entraserver.App{ClientID: "cert-app", Certificates: []*x509.Certificate{rsa0.Chain[0], rsa1.Chain[0], ec.Chain[0]}, ExpiresIn: 600})
	f.srv.AddApp(entraserver.App{ClientID: "sni-app", Certificates: []*x509.Certificate{rsa1.Chain[0]}, RequireX5C: true})

	tests := []struct {
		name     string
		req      Request
		wantAlg  string
		wantX5C  bool
		lifetime time.Duration
		refresh  time.Duration
	}{
		{name: "Entra with a secret full of reserved characters", req: f.entraReq("secret-app", &credential.ClientSecret{Secret: weirdSecret}), lifetime: time.Hour, refresh: 30 * time.Minute},
		{name: "Entra with a certificate and no x5c", req: f.entraReq("cert-app", rsa0), wantAlg: "PS256", lifetime: 10 * time.Minute},
		{name: "Entra with a certificate sending x5c for subject name and issuer auth", req: f.entraReq("sni-app", &x5c), wantAlg: "PS256", wantX5C: true, lifetime: 3599 * time.Second},
		{name: "Entra with an assertion from elsewhere", req: f.entraReq("cert-app", preSigned(t, rsa0, "cert-app", f.srv.TokenURL(tenant))), wantAlg: "RS256", lifetime: 10 * time.Minute},
		{name: "issuer discovery with a secret in Basic", req: f.issuerReq("secret-app", &credential.ClientSecret{Secret: weirdSecret}), lifetime: time.Hour, refresh: 30 * time.Minute},
		{name: "token URL with a secret in the form", req: f.tokenReq("secret-app", &credential.ClientSecret{Secret: weirdSecret, AuthMethod: credential.ClientSecretPost}), lifetime: time.Hour, refresh: 30 * time.Minute},
		{name: "token URL with an RSA certificate signing RS256", req: f.tokenReq("cert-app", rsa0), wantAlg: "RS256", lifetime: 10 * time.Minute},
		{name: "issuer discovery with an RSA certificate signing PS256", req: f.issuerReq("cert-app", &ps), wantAlg: "PS256", lifetime: 10 * time.Minute},
		{name: "token URL with an EC P-256 certificate signing ES256", req: f.tokenReq("cert-app", ec), wantAlg: "ES256", lifetime: 10 * time.Minute},
		{name: "token URL with a certificate sending x5c", req: f.tokenReq("sni-app", &x5c), wantAlg: "RS256", wantX5C: true, lifetime: 3599 * time.Second},
		{name: "token URL with an assertion from elsewhere", req: f.tokenReq("cert-app", preSigned(t, rsa0, "cert-app", f.srv.TokenURL(tenant))), wantAlg: "RS256", lifetime: 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.eng.Fetch(context.Background(), tt.req, nil)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.FromCache {
				t.Errorf("token = %+v", tok)
			}
			if !tok.IssuedAt.Equal(now) || tok.ExpiresAt.Sub(tok.IssuedAt) != tt.lifetime {
				t.Errorf("issued %v expires %v, want lifetime %v on the engine clock", tok.IssuedAt, tok.ExpiresAt, tt.lifetime)
			}
			if got := durationOrZero(tok.RefreshAt, tok.IssuedAt); got != tt.refresh {
				t.Errorf("refresh after %v, want %v", got, tt.refresh)
			}
			if len(tok.Scopes) != 1 || tok.Scopes[0] != graphScope {
				t.Errorf("scopes = %q", tok.Scopes)
			}
			if tt.wantAlg == "" {
				return
			}
			info, _ := f.srv.LastAssertion(tt.req.ClientID)
			if info.Algorithm != tt.wantAlg || info.X5C != tt.wantX5C {
				t.Errorf("assertion = %+v, want alg %s x5c %v", info, tt.wantAlg, tt.wantX5C)
			}
		})
	}
}

func durationOrZero(t, from time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return t.Sub(from)
}

func TestSecondFetchIsServedFromMSALCacheUntilNotFresh(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	f := newFixture(t, Options{Clock: clk})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}, ExpiresIn: 3600})
	req := f.entraReq("app", &credential.ClientSecret{Secret: "a-good-secret"})
	first, err := f.eng.Fetch(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(tok Token) bool { return clk.Now().Before(tok.ExpiresAt.Add(-5 * time.Minute)) }
	second, err := f.eng.Fetch(context.Background(), req, fresh)
	if err != nil || !second.FromCache || second.AccessToken != first.AccessToken || !second.IssuedAt.Equal(first.IssuedAt) {
		t.Fatalf("second = %+v, %v; want the cached first token", second, err)
	}
	clk.SetTime(clk.Now().Add(58 * time.Minute))
	third, err := f.eng.Fetch(context.Background(), req, fresh)
	if err != nil || third.FromCache || third.AccessToken == first.AccessToken {
		t.Fatalf("third = %+v, %v; want a new token from the service", third, err)
	}
	if n := f.srv.TokenCalls("app"); n != 2 {
		t.Errorf("token calls = %d, want 2", n)
	}
	f.eng.Forget(req.CacheKey())
	if _, err := f.eng.Fetch(context.Background(), req, fresh); err != nil || f.srv.TokenCalls("app") != 3 {
		t.Errorf("after Forget: %v, calls %d; want a new client and a call", err, f.srv.TokenCalls("app"))
	}
}

func TestGenericFlowSendsExtraParametersAndReadsStringExpiry(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	f.srv.InjectFaults(entraserver.Fault{Body: `{"access_token":"opaque","token_type":"bearer","expires_in":"120","scope":"a b"}`})
	req := f.tokenReq("app", &credential.ClientSecret{Secret: "a-good-secret"})
	req.ExtraParameters = map[string]string{"resource": "urn:x", "audience": "api"}
	tok, err := f.eng.Fetch(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt.Sub(tok.IssuedAt) != 2*time.Minute || tok.TokenType != "bearer" || len(tok.Scopes) != 2 {
		t.Errorf("token = %+v", tok)
	}
	form := f.srv.LastForm("app")
	if form.Get("resource") != "urn:x" || form.Get("audience") != "api" || form.Get("grant_type") != "client_credentials" {
		t.Errorf("form = %v", form)
	}
}

func TestPKCS12CertificateWithPasswordWorksWithEntra(t *testing.T) {
	f := newFixture(t, Options{})
	c := rsaCert(t, 2)
	pfx, err := pkcs12.Modern.Encode(c.Key, c.Chain[0], nil, "p12 pass:word")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := credential.ParsePKCS12(pfx, "p12 pass:word")
	if err != nil {
		t.Fatal(err)
	}
	f.srv.AddApp(entraserver.App{ClientID: "p12-app", Certificates: c.Chain})
	if _, err := f.eng.Fetch(context.Background(), f.entraReq("p12-app", parsed), nil); err != nil {
		t.Fatal(err)
	}
}

func TestFormEncodedTokenAnswersAreRead(t *testing.T) {
	h := newHostile(t, false)
	h.set(&h.token, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = io.WriteString(w, "access_token=opaque&token_type=bearer&expires_in=600&refresh_in=300&scope=a+b")
	})
	tok, err := h.engine(Options{}).Fetch(context.Background(), h.tokenReq(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "opaque" || tok.ExpiresAt.Sub(tok.IssuedAt) != 10*time.Minute || tok.RefreshAt.Sub(tok.IssuedAt) != 5*time.Minute || len(tok.Scopes) != 2 {
		t.Errorf("token = %+v", tok)
	}
}
