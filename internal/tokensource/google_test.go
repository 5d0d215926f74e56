package tokensource

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/googlests"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

const (
	gIssuer  = "https://kubernetes.default.svc"
	gSubject = "system:serviceaccount:team-a:app"
	gEmail   = "app@project-a.iam.gserviceaccount.com"
)

// googleEnv is googlests with a provider that trusts key for gIssuer's
// tokens and a service account gSubject may impersonate.
type googleEnv struct {
	srv      *googlests.Server
	key      crypto.Signer
	provider googlests.Provider
	eng      *Engine
	provided atomic.Int32
	subjects []string
}

func newGoogleEnv(t *testing.T, o Options) *googleEnv {
	t.Helper()
	srv := googlests.New()
	t.Cleanup(srv.Close)
	key := testcert.RSA(t, 2048)
	e := &googleEnv{srv: srv, key: key, provider: googlests.Provider{
		ProjectNumber: "123456789012", Pool: "clusters", Provider: "cluster-a", Issuer: gIssuer,
		Keys:             googlests.StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}),
		SubjectCondition: "system:serviceaccount:team-a:*",
	}}
	srv.AddProvider(e.provider)
	srv.AddServiceAccount(googlests.ServiceAccount{Email: gEmail, WorkloadIdentityUsers: []string{e.provider.PrincipalFor(gSubject)}})
	o.RootCAs = srv.CertPool()
	e.eng = New(o)
	return e
}

// subjectToken is a service account token as the API server mints it.
func (e *googleEnv) subjectToken(t *testing.T, sub string) string {
	t.Helper()
	now := time.Now()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: e.key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: gIssuer, Subject: sub, Audience: jwt.Audience{e.provider.DefaultAudience()},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	e.subjects = append(e.subjects, s)
	return s
}

// request is a federated-only request for gSubject; email adds impersonation.
func (e *googleEnv) request(t *testing.T, email string) Request {
	subject := e.subjectToken(t, gSubject)
	return Request{
		Credential: &credential.Assertion{ID: "team-a/app/uid/" + e.provider.DefaultAudience(), Provide: func(context.Context) (string, error) {
			e.provided.Add(1)
			return subject, nil
		}},
		AllowedHosts: []string{e.srv.Host()},
		Google: &GoogleFederation{Audience: e.provider.Audience(), STSURL: e.srv.TokenURL(),
			IAMCredentialsURL: iamURL(e, email), ServiceAccountEmail: email},
	}
}

func iamURL(e *googleEnv, email string) string {
	if email == "" {
		return ""
	}
	return e.srv.URL
}

// whoami asks the stand-in Google API who a token is.
func (e *googleEnv) whoami(t *testing.T, token string) googlests.WhoAmI {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.APIURL(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w googlests.WhoAmI
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&w) != nil {
		t.Fatalf("whoami answered %d", resp.StatusCode)
	}
	return w
}

func TestGoogleFederatedTokenLastsWhatSTSSays(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	e.srv.SetLifetimes(15*time.Minute, 0)
	e.srv.AcceptFederatedTokens(true)
	before := time.Now()
	tok, err := e.eng.Fetch(context.Background(), e.request(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || len(tok.Scopes) != 1 || tok.Scopes[0] != GoogleCloudPlatformScope {
		t.Errorf("type %q scopes %q", tok.TokenType, tok.Scopes)
	}
	// googlests caps the federated token at the subject's 10 minutes, as Google does.
	if life := tok.ExpiresAt.Sub(before); life < 9*time.Minute || life > 10*time.Minute+time.Second {
		t.Errorf("lifetime %v, want the 10 minutes STS granted", life)
	}
	if w := e.whoami(t, tok.AccessToken); w.Principal != e.provider.PrincipalFor(gSubject) {
		t.Errorf("principal %q", w.Principal)
	}
	x := e.srv.LastExchange()
	if x["audience"] != e.provider.Audience() || x["subject_token_type"] != TokenTypeJWT || x["scope"] != GoogleCloudPlatformScope ||
		x["grant_type"] != googlests.GrantTypeExchange || x["requested_token_type"] != TokenTypeAccessToken {
		t.Errorf("exchange %v", x)
	}
	if n := e.srv.Calls(googlests.GenerateAccessToken); n != 0 {
		t.Errorf("%d impersonation calls without serviceAccountEmail", n)
	}
}

func TestGoogleImpersonationGetsTheServiceAccountsToken(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	req := e.request(t, gEmail)
	req.Google.LifetimeSeconds = 1200
	req.Scopes = []string{GoogleCloudPlatformScope, "https://www.googleapis.com/auth/devstorage.read_only"}
	before := time.Now()
	tok, err := e.eng.Fetch(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if life := tok.ExpiresAt.Sub(before); life < 19*time.Minute || life > 20*time.Minute+time.Second {
		t.Errorf("lifetime %v, want the 20 minutes asked", life)
	}
	w := e.whoami(t, tok.AccessToken)
	if w.Principal != "serviceAccount:"+gEmail || !strings.Contains(w.Scope, "devstorage.read_only") {
		t.Errorf("whoami %+v", w)
	}
	// The federated token asks for cloud-platform only; the scopes go to impersonation.
	if x := e.srv.LastExchange(); x["scope"] != GoogleCloudPlatformScope {
		t.Errorf("STS scope %q", x["scope"])
	}
	if s, g := e.srv.Calls(googlests.STS), e.srv.Calls(googlests.GenerateAccessToken); s != 1 || g != 1 {
		t.Errorf("calls: STS %d, generateAccessToken %d", s, g)
	}
	if len(tok.Scopes) != 2 {
		t.Errorf("scopes %q", tok.Scopes)
	}
}

// Each of Google's refusals becomes the engine's classification: STS's
// OAuth errors and IAM's statuses, terminal unless Google says to retry.
func TestGoogleRefusalsAreClassified(t *testing.T) {
	cases := []struct {
		name      string
		email     string
		setup     func(*googleEnv, *Request)
		code      string
		status    int
		retryable bool
		text      string
	}{
		{"subject token signed by an unknown key", "", func(e *googleEnv, r *Request) {
			e.provider.Keys = googlests.StaticKeys(jose.JSONWebKeySet{})
			e.srv.AddProvider(e.provider)
		}, "invalid_grant", 400, false, ""},
		{"unknown provider", "", func(e *googleEnv, r *Request) {
			r.Google.Audience = strings.Replace(r.Google.Audience, "cluster-a", "cluster-z", 1)
		}, "invalid_target", 400, false, ""},
		{"attribute condition", "", func(e *googleEnv, r *Request) {
			e.provider.SubjectCondition = "system:serviceaccount:team-b:*"
			e.srv.AddProvider(e.provider)
		}, "unauthorized_client", 400, false, ""},
		{"STS invalid_request", "", func(e *googleEnv, r *Request) {
			e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.STS, Status: 400, Error: "invalid_request", Message: "Invalid value for \"audience\"."})
		}, "invalid_request", 400, false, `Invalid value for "audience".`},
		{"STS unavailable", "", func(e *googleEnv, r *Request) {
			e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.STS, Status: 503})
		}, "UNAVAILABLE", 503, true, "Security Token Service: Service Unavailable"},
		{"STS throttled", "", func(e *googleEnv, r *Request) {
			e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.STS, Status: 429, Error: "temporarily_unavailable"})
		}, "temporarily_unavailable", 429, true, ""},
		{"no workloadIdentityUser binding", gEmail, func(e *googleEnv, r *Request) {
			e.srv.AddServiceAccount(googlests.ServiceAccount{Email: gEmail})
		}, "PERMISSION_DENIED", 403, false, "generateAccessToken: "},
		{"unknown service account", gEmail, func(e *googleEnv, r *Request) {
			r.Google.ServiceAccountEmail = "nobody@project-a.iam.gserviceaccount.com"
		}, "NOT_FOUND", 404, false, "generateAccessToken: "},
		{"lifetime above the organisation's limit", gEmail, func(e *googleEnv, r *Request) {
			r.Google.LifetimeSeconds = 7200
		}, "INVALID_ARGUMENT", 400, false, "generateAccessToken: "},
		{"IAM quota", gEmail, func(e *googleEnv, r *Request) {
			e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: 429})
		}, "RESOURCE_EXHAUSTED", 429, true, ""},
		{"IAM internal error", gEmail, func(e *googleEnv, r *Request) {
			e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: 500})
		}, "INTERNAL", 500, true, ""},
		{"IAM answer that is not JSON", gEmail, func(e *googleEnv, r *Request) {
			e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: 502, Body: "<html>bad gateway</html>"})
		}, "malformed_response", 502, true, "generateAccessToken: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newGoogleEnv(t, Options{})
			req := e.request(t, tc.email)
			tc.setup(e, &req)
			_, err := e.eng.Fetch(context.Background(), req, nil)
			te := asError(t, err)
			if te.Code != tc.code || te.StatusCode != tc.status || te.Retryable != tc.retryable || !strings.Contains(te.Error(), tc.text) {
				t.Fatalf("got %q (code %q, status %d, retryable %v)", te.Error(), te.Code, te.StatusCode, te.Retryable)
			}
		})
	}
}

// Google echoing the subject token or the federated token in a refusal
// puts neither in the error text.
func TestGoogleRefusalsNeverCarryTokens(t *testing.T) {
	for _, email := range []string{"", gEmail} {
		e := newGoogleEnv(t, Options{})
		e.srv.EchoCredentials(true)
		req := e.request(t, email)
		if email == "" {
			e.provider.SubjectCondition = "nobody"
			e.srv.AddProvider(e.provider)
		} else {
			e.srv.AddServiceAccount(googlests.ServiceAccount{Email: gEmail})
		}
		_, err := e.eng.Fetch(context.Background(), req, nil)
		if err == nil {
			t.Fatal("no refusal")
		}
		msg := err.Error()
		if !strings.Contains(msg, "[redacted]") {
			t.Errorf("the echo was not seen: %s", msg)
		}
		for _, tok := range append(e.srv.IssuedTokens(), e.subjects...) {
			if strings.Contains(msg, tok) || strings.Contains(msg, tok[5:25]) {
				t.Fatalf("error text holds a token: %s", msg)
			}
		}
	}
}

// A subject token that is not JWT-shaped is scrubbed too: only its
// registration as a secret can find it in an echo.
func TestGoogleEchoedOpaqueSubjectIsScrubbed(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	e.srv.EchoCredentials(true)
	req := e.request(t, "")
	const opaque = "opaque-subject-0123456789abcdef"
	req.Credential = &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) { return opaque, nil }}
	_, err := e.eng.Fetch(context.Background(), req, nil)
	if err == nil || strings.Contains(err.Error(), opaque) || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("got %v", err)
	}
}

// The ServiceAccount's consent covers the IAM Credentials host too: a
// host it does not list gets nothing, and STS is not called either.
func TestGoogleConsentRefusesTheIAMHostBeforeAnyCall(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	req := e.request(t, gEmail)
	req.Google.IAMCredentialsURL = e.srv.LocalhostURL()
	if err := req.CheckConfiguredHost(); err == nil {
		t.Error("CheckConfiguredHost allowed the IAM host")
	}
	_, err := e.eng.Fetch(context.Background(), req, nil)
	var he *HostNotAllowedError
	if !errors.As(err, &he) || !strings.HasPrefix(he.Host, "localhost:") {
		t.Fatalf("got %v", err)
	}
	if e.srv.Calls(googlests.STS) != 0 || e.provided.Load() != 0 {
		t.Fatal("something was sent or minted before the refusal")
	}

	t.Run("the operator's ceiling", func(t *testing.T) {
		e := newGoogleEnv(t, Options{AllowedIssuerHosts: []string{"127.0.0.1:1"}})
		_, err := e.eng.Fetch(context.Background(), e.request(t, ""), nil)
		if !errors.As(err, &he) || !he.ByOperator || e.srv.Calls(googlests.STS) != 0 {
			t.Fatalf("got %v, %d calls", err, e.srv.Calls(googlests.STS))
		}
	})
}

func TestGoogleAnswerCaps(t *testing.T) {
	t.Run("an answer larger than the cap", func(t *testing.T) {
		e := newGoogleEnv(t, Options{MaxResponseBytes: 4096})
		e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: 500, Body: `{"error":{"message":"` + strings.Repeat("x", 8000) + `"}}`})
		_, err := e.eng.Fetch(context.Background(), e.request(t, gEmail), nil)
		if te := asError(t, err); te.Code != "malformed_response" || !strings.Contains(te.Description, "larger than 4 KiB") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a token larger than the cap", func(t *testing.T) {
		e := newGoogleEnv(t, Options{MaxTokenBytes: 20})
		_, err := e.eng.Fetch(context.Background(), e.request(t, gEmail), nil)
		var tl *TokenTooLargeError
		if !errors.As(err, &tl) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a redirect", func(t *testing.T) {
		e := newGoogleEnv(t, Options{})
		e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: 307, Body: "{}"})
		_, err := e.eng.Fetch(context.Background(), e.request(t, gEmail), nil)
		if te := asError(t, err); te.Code != "redirect" {
			t.Fatalf("got %v", err)
		}
	})
}

func TestGoogleSubjectFailureIsCredentialUnavailable(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	req := e.request(t, "")
	req.Credential = &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) { return "", errors.New("apiserver down") }}
	_, err := e.eng.Fetch(context.Background(), req, nil)
	if te := asError(t, err); te.Code != "credential_unavailable" || !te.Retryable || e.srv.Calls(googlests.STS) != 0 {
		t.Fatalf("got %v", err)
	}
}

func TestGoogleValidation(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	cases := []struct {
		name  string
		edit  func(*Request)
		field string
	}{
		{"audience not a provider", func(r *Request) { r.Google.Audience = "https://iam.googleapis.com/projects/1" }, "google.audience"},
		{"a client ID", func(r *Request) { r.ClientID = "app" }, "google"},
		{"a token URL as well", func(r *Request) { r.TokenURL = "https://x.example/token" }, "google"},
		{"a client secret", func(r *Request) { r.Credential = &credential.ClientSecret{Secret: "s3cret-value"} }, "credential"},
		{"lifetime without impersonation", func(r *Request) { r.Google.ServiceAccountEmail = ""; r.Google.LifetimeSeconds = 900 }, "google.serviceAccountEmail"},
		{"lifetime too long", func(r *Request) { r.Google.LifetimeSeconds = 50000 }, "google.tokenLifetimeSeconds"},
		{"bad email", func(r *Request) { r.Google.ServiceAccountEmail = "a b@c" }, "google.serviceAccountEmail"},
		{"plain http STS", func(r *Request) { r.Google.STSURL = "http://sts.example.com/v1/token" }, "google.stsURL"},
		{"mixed schemes", func(r *Request) { r.Google.IAMCredentialsURL = "http://localhost:1" }, "google.iamCredentialsURL"},
		{"bad scope", func(r *Request) { r.Scopes = []string{"a b"} }, "scopes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request(t, gEmail)
			tc.edit(&req)
			var ce *ConfigError
			if err := req.Validate(); !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("got %v, want a problem with %s", err, tc.field)
			}
		})
	}
	if err := e.request(t, gEmail).Validate(); err != nil {
		t.Fatal(err)
	}
	def := Request{Credential: &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) { return "", nil }},
		Google: &GoogleFederation{Audience: e.provider.Audience(), ServiceAccountEmail: gEmail}}
	eps := googleGrant{}.endpoints(def)
	if len(eps) != 2 || eps[0].url != DefaultGoogleSTSURL ||
		eps[1].url != "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"+gEmail+":generateAccessToken" {
		t.Fatalf("endpoints %v", eps)
	}
}

// Each setting that changes the token changes the cache key.
func TestGoogleSettingsSeparateTokens(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	base := e.request(t, gEmail)
	seen := map[string]string{"base": base.CacheKey()}
	for name, edit := range map[string]func(*GoogleFederation){
		"audience": func(g *GoogleFederation) { g.Audience += "x" },
		"sts":      func(g *GoogleFederation) { g.STSURL += "/x" },
		"iam":      func(g *GoogleFederation) { g.IAMCredentialsURL += "/x" },
		"email":    func(g *GoogleFederation) { g.ServiceAccountEmail = "b" + g.ServiceAccountEmail },
		"lifetime": func(g *GoogleFederation) { g.LifetimeSeconds = 900 },
	} {
		r := base
		g := *base.Google
		edit(&g)
		r.Google = &g
		k := r.CacheKey()
		for other, ok := range seen {
			if ok == k {
				t.Errorf("%s and %s share a key", name, other)
			}
		}
		seen[name] = k
	}
}

func TestGoogleNetworkFailureIsRetryable(t *testing.T) {
	e := newGoogleEnv(t, Options{})
	req := e.request(t, "")
	req.Google.STSURL = "https://127.0.0.1:1/v1/token"
	req.AllowedHosts = []string{"127.0.0.1:1"}
	_, err := e.eng.Fetch(context.Background(), req, nil)
	if te := asError(t, err); te.Code != "network" || !te.Retryable {
		t.Fatalf("got %v", err)
	}
}
