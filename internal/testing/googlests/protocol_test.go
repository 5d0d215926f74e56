package googlests_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/token-operator/token-operator/internal/testing/googlests"
)

// answer is a decoded JSON answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) do(t *testing.T, method, url, contentType, bearer, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return a
}

func (e *env) exchangeForm(t *testing.T, f url.Values) answer {
	t.Helper()
	return e.do(t, http.MethodPost, e.srv.TokenURL(), "application/x-www-form-urlencoded", "", f.Encode())
}

func (e *env) form(subjectToken string) url.Values {
	return url.Values{
		"grant_type": {googlests.GrantTypeExchange}, "audience": {e.provider.Audience()},
		"scope": {googlests.CloudPlatformScope}, "requested_token_type": {googlests.TokenTypeAccessToken},
		"subject_token_type": {googlests.TokenTypeIDToken}, "subject_token": {subjectToken},
	}
}

func (e *env) generate(t *testing.T, bearer, email, body string) answer {
	t.Helper()
	return e.do(t, http.MethodPost, e.srv.ImpersonationURL(email), "application/json", bearer, body)
}

func (a answer) wantOAuth(t *testing.T, status int, code, text string) {
	t.Helper()
	desc, _ := a.body["error_description"].(string)
	if a.status != status || a.body["error"] != code || !strings.Contains(desc, text) {
		t.Fatalf("got %d %v, want %d %s %q", a.status, a.body, status, code, text)
	}
}

func (a answer) wantGoogle(t *testing.T, status int, rpc, text string) {
	t.Helper()
	e, _ := a.body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	code, _ := e["code"].(float64)
	if a.status != status || int(code) != status || e["status"] != rpc || !strings.Contains(msg, text) {
		t.Fatalf("got %d %v, want %d %s %q", a.status, a.body, status, rpc, text)
	}
}

func TestExchangeAnswer(t *testing.T) {
	e := newEnv(t)
	a := e.exchangeForm(t, e.form(sign(t, e.key, "k1", e.claims())))
	if a.status != http.StatusOK {
		t.Fatalf("got %d %v", a.status, a.body)
	}
	tok, _ := a.body["access_token"].(string)
	if !strings.HasPrefix(tok, "ya29.") || a.body["issued_token_type"] != googlests.TokenTypeAccessToken ||
		a.body["token_type"] != "Bearer" {
		t.Errorf("answer %v", a.body)
	}
	if in, _ := a.body["expires_in"].(float64); in < 3590 || in > 3600 {
		t.Errorf("answer %v", a.body)
	}
}

func TestExchangeJSONBody(t *testing.T) {
	e := newEnv(t)
	camelCase := map[string]string{"grant_type": "grantType", "requested_token_type": "requestedTokenType", "subject_token_type": "subjectTokenType", "subject_token": "subjectToken"}
	for _, camel := range []bool{true, false} {
		body := map[string]string{}
		for k, v := range e.form(sign(t, e.key, "k1", e.claims())) {
			if c, ok := camelCase[k]; ok && camel {
				k = c
			}
			body[k] = v[0]
		}
		body["options"] = `{"userProject":"project-a"}`
		b, _ := json.Marshal(body)
		a := e.do(t, http.MethodPost, e.srv.TokenURL(), "application/json", "", string(b))
		if a.status != http.StatusOK {
			t.Fatalf("camelCase %v: got %d %v", camel, a.status, a.body)
		}
		if got := e.srv.LastExchange()["options"]; got != body["options"] {
			t.Errorf("options recorded as %q", got)
		}
	}
}

func TestExchangeRequestChecks(t *testing.T) {
	e := newEnv(t)
	good := sign(t, e.key, "k1", e.claims())
	noIAT := e.claims()
	noIAT.IssuedAt = nil
	for _, tc := range []struct {
		name string
		edit func(url.Values)
		code string
		text string
	}{
		{"grant type", func(f url.Values) { f.Set("grant_type", "client_credentials") }, "invalid_request", `"grant_type"`},
		{"requested token type", func(f url.Values) { f.Set("requested_token_type", googlests.TokenTypeJWT) }, "invalid_request", `"requested_token_type"`},
		{"no subject token", func(f url.Values) { f.Del("subject_token") }, "invalid_request", `"subject_token"`},
		{"options not JSON", func(f url.Values) { f.Set("options", "userProject=x") }, "invalid_request", `"options"`},
		{"workforce pool", func(f url.Values) {
			f.Set("audience", "//iam.googleapis.com/locations/global/workforcePools/staff/providers/idp")
		}, "invalid_target", "pool or provider"},
		{"not a JWT", func(f url.Values) { f.Set("subject_token", "opaque") }, "invalid_grant", "parse"},
		{"unknown key ID", func(f url.Values) { f.Set("subject_token", sign(t, e.key, "k2", e.claims())) }, "invalid_grant", "signature"},
		{"no iat", func(f url.Values) { f.Set("subject_token", sign(t, e.key, "k1", noIAT)) }, "invalid_grant", "iat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.form(good)
			tc.edit(f)
			e.exchangeForm(t, f).wantOAuth(t, http.StatusBadRequest, tc.code, tc.text)
		})
	}
}

// federated gets a federated token with scope.
func (e *env) federated(t *testing.T, scope string) string {
	t.Helper()
	f := e.form(sign(t, e.key, "k1", e.claims()))
	f.Set("scope", scope)
	a := e.exchangeForm(t, f)
	tok, _ := a.body["access_token"].(string)
	if tok == "" {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	return tok
}

func TestGenerateAccessTokenChecks(t *testing.T) {
	e := newEnv(t)
	tok := e.federated(t, googlests.CloudPlatformScope)
	unscoped := e.federated(t, "")
	body := `{"scope":["` + googlests.CloudPlatformScope + `"],"lifetime":"3600s"}`
	a := e.generate(t, "", saEmail, body)
	a.wantGoogle(t, http.StatusUnauthorized, "UNAUTHENTICATED", "invalid authentication credentials")
	if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no Bearer challenge: %q", a.header.Get("WWW-Authenticate"))
	}
	e.generate(t, "ya29.forged", saEmail, body).wantGoogle(t, 401, "UNAUTHENTICATED", "invalid authentication credentials")
	e.generate(t, unscoped, saEmail, body).wantGoogle(t, 403, "PERMISSION_DENIED", "insufficient authentication scopes")
	for _, tc := range []struct{ name, body, text string }{
		{"unknown field", `{"scope":["x"],"lifetimeSeconds":3600}`, "Invalid JSON payload"},
		{"no scope", `{"lifetime":"3600s"}`, "Scope"},
		{"lifetime without unit", `{"scope":["x"],"lifetime":"3600"}`, "duration must end with 's'"},
		{"zero lifetime", `{"scope":["x"],"lifetime":"0s"}`, "lifetime"},
		{"delegates", `{"scope":["x"],"delegates":["projects/-/serviceAccounts/b@p.iam.gserviceaccount.com"]}`, "Delegation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.generate(t, tok, saEmail, tc.body).wantGoogle(t, http.StatusBadRequest, "INVALID_ARGUMENT", tc.text)
		})
	}
	a = e.do(t, http.MethodPost, strings.Replace(e.srv.ImpersonationURL(saEmail), "/projects/-/", "/projects/project-a/", 1), "application/json", tok, body)
	a.wantGoogle(t, http.StatusBadRequest, "INVALID_ARGUMENT", "wildcard")

	a = e.generate(t, tok, saEmail, `{"scope":["`+googlests.CloudPlatformScope+`"]}`)
	exp, err := time.Parse(time.RFC3339, a.body["expireTime"].(string))
	if a.status != http.StatusOK || err != nil {
		t.Fatalf("got %d %v", a.status, a.body)
	}
	near(t, "default lifetime", time.Until(exp), time.Hour)
}

// TestExpiredTokensRefused: a federated token past its expiry no longer
// impersonates, an impersonated one no longer calls the API.
func TestExpiredTokensRefused(t *testing.T) {
	e := newEnv(t)
	clk := clocktesting.NewFakeClock(time.Now())
	e.srv.SetClock(clk)
	e.srv.SetLifetimes(15*time.Minute, 0)
	fed := e.federated(t, googlests.CloudPlatformScope)
	body := `{"scope":["` + googlests.CloudPlatformScope + `"],"lifetime":"1200s"}`
	a := e.generate(t, fed, saEmail, body)
	saTok, _ := a.body["accessToken"].(string)
	if saTok == "" {
		t.Fatalf("got %d %v", a.status, a.body)
	}
	clk.Step(16 * time.Minute)
	e.generate(t, fed, saEmail, body).wantGoogle(t, http.StatusUnauthorized, "UNAUTHENTICATED", "invalid authentication credentials")
	if status, who := e.whoami(t, saTok); status != http.StatusOK || who.ExpiresIn < 239 || who.ExpiresIn > 240 {
		t.Errorf("impersonated token at 16 of 20 minutes: %d %+v", status, who)
	}
	clk.Step(4 * time.Minute)
	if status, _ := e.whoami(t, saTok); status != http.StatusUnauthorized {
		t.Errorf("expired impersonated token answered %d", status)
	}
}

func TestAPIRequiresCloudPlatformScope(t *testing.T) {
	e := newEnv(t)
	fed := e.federated(t, googlests.CloudPlatformScope)
	a := e.generate(t, fed, saEmail, `{"scope":["https://www.googleapis.com/auth/devstorage.read_only"]}`)
	tok, _ := a.body["accessToken"].(string)
	e.do(t, http.MethodGet, e.srv.APIURL(), "", tok, "").wantGoogle(t, http.StatusForbidden, "PERMISSION_DENIED", "insufficient authentication scopes")
}

// TestKeyWithoutIDVerifiesAnyToken: a key read from a PEM file (as the API
// server's signing key is in envtest) has no ID but verifies tokens that
// name one, as Kubernetes service-account tokens do.
func TestKeyWithoutIDVerifiesAnyToken(t *testing.T) {
	e := newEnv(t)
	p := e.provider
	p.Keys = googlests.StaticKeys(publicJWKS(e.key, ""))
	e.srv.AddProvider(p)
	if a := e.exchangeForm(t, e.form(sign(t, e.key, "kube-key-id", e.claims()))); a.status != http.StatusOK {
		t.Fatalf("got %d %v", a.status, a.body)
	}
}

func TestEchoCredentials(t *testing.T) {
	e := newEnv(t)
	e.srv.EchoCredentials(true)
	c := e.claims()
	c.Audience = []string{"elsewhere"}
	subjectToken := sign(t, e.key, "k1", c)
	a := e.exchangeForm(t, e.form(subjectToken))
	if desc, _ := a.body["error_description"].(string); a.status != http.StatusBadRequest || !strings.Contains(desc, subjectToken) {
		t.Errorf("STS refusal does not echo the subject token: %d %v", a.status, a.body)
	}
	fed := e.federated(t, googlests.CloudPlatformScope)
	a = e.generate(t, fed, "ghost@p.iam.gserviceaccount.com", `{"scope":["x"]}`)
	a.wantGoogle(t, http.StatusNotFound, "NOT_FOUND", fed)
}

func TestDelayedFaultAndSecondHostName(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.API, Status: http.StatusServiceUnavailable, Delay: 300 * time.Millisecond})
	start := time.Now()
	a := e.do(t, http.MethodGet, strings.Replace(e.srv.APIURL(), e.srv.URL, e.srv.LocalhostURL(), 1), "", "", "")
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("delayed fault answered after %v", took)
	}
	a.wantGoogle(t, http.StatusServiceUnavailable, "UNAVAILABLE", "Service Unavailable")
	if n := e.srv.Calls(googlests.API); n != 1 {
		t.Errorf("API calls %d, want 1", n)
	}
}

func TestExplicitAllowedAudiences(t *testing.T) {
	e := newEnv(t)
	p := e.provider
	p.AllowedAudiences = []string{"sts.googleapis.com", "https://cluster-a.example.test"}
	e.srv.AddProvider(p)
	c := e.claims()
	c.Audience = []string{"https://cluster-a.example.test"}
	if a := e.exchangeForm(t, e.form(sign(t, e.key, "k1", c))); a.status != http.StatusOK {
		t.Fatalf("listed audience refused: %d %v", a.status, a.body)
	}
	// Listing audiences replaces the default one.
	e.exchangeForm(t, e.form(sign(t, e.key, "k1", e.claims()))).wantOAuth(t, http.StatusBadRequest, "invalid_grant", "does not match the expected audience")
}

func TestFaultBodyIsSentAsIs(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFaults(googlests.Fault{Endpoint: googlests.STS, Status: http.StatusOK, Body: "<html>proxy</html>"})
	_, err := e.token(t, e.config(sign(t, e.key, "k1", e.claims()), ""))
	if err == nil || !strings.Contains(err.Error(), "unmarshal") {
		t.Fatalf("got %v, want the client's parse error", err)
	}
}
