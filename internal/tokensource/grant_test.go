package tokensource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/credential"
)

// echoGrant is a grant written the careless way a new one might be: it
// sends the client secret to the start endpoint, then optionally to a
// second one or elsewhere, and its classify copies whatever went wrong,
// server text included, into the error.
type echoGrant struct {
	second string // a second configured endpoint, or ""
	detour string // a URL it calls that is not configured, or ""
	block  bool   // wait for the call's deadline instead of calling
	token  string // the access token to answer with
}

func (g echoGrant) endpoints(r Request) []endpoint {
	eps := []endpoint{{"tokenURL", r.TokenURL}}
	if g.second != "" {
		eps = append(eps, endpoint{"secondURL", g.second})
	}
	return eps
}

func (echoGrant) keyParts(r Request) []string { return []string{"echo", r.TokenURL} }

func (g echoGrant) validate(r Request) *ConfigError {
	if r.TokenURL == "" {
		return &ConfigError{Field: "tokenURL", Message: "the echo grant needs a token URL"}
	}
	return firstProblem(func() *ConfigError { return r.checkEndpoints(g) }, r.checkClient,
		func() *ConfigError { return r.checkCredential(signableKey) })
}

func (g echoGrant) fetch(ctx context.Context, c *call) (Token, error) {
	if g.block {
		<-ctx.Done()
		return Token{}, errors.New("gave up")
	}
	secret := c.req.Credential.(*credential.ClientSecret).Secret
	c.st.addSecret(secret)
	for _, u := range []string{c.req.TokenURL, g.second, g.detour} {
		if u == "" {
			continue
		}
		hreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"secret": {secret}}.Encode()))
		hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.e.client.Do(hreq)
		if err != nil {
			return Token{}, err
		}
		body, _ := readBody(resp)
		if resp.StatusCode != http.StatusOK {
			return Token{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
		}
	}
	now := c.e.clock.Now()
	return Token{AccessToken: g.token, TokenType: "Bearer", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
}

// classify copies the error's text, echoed secret and all.
func (echoGrant) classify(_ *Engine, err error, _ []string) error {
	return &Error{Code: "echo_refused", Description: err.Error()}
}

func (echoGrant) keepsTokens() bool { return true }

// echoServer counts calls and answers with what it was sent.
func echoServer(t *testing.T, status int) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func TestOneGrantIsChosenPerRequest(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		want grant
	}{
		{Request{Authority: "https://login.microsoftonline.com/contoso"}, entraGrant{}},
		{Request{IssuerURL: "https://idp.example.com"}, clientCredentialsGrant{}},
		{Request{TokenURL: "https://idp.example.com/token"}, clientCredentialsGrant{}},
		{Request{}, clientCredentialsGrant{}},
		{Request{AWS: &AWSRole{RoleARN: "arn:aws:iam::111122223333:role/r"}}, awsGrant{}},
	} {
		if got := tc.req.grant(); got != tc.want {
			t.Errorf("%+v chose %T, want %T", tc.req, got, tc.want)
		}
	}
}

func TestGrantsKeepTheirTokensApart(t *testing.T) {
	// One request read by every grant: the same client, credential and
	// scopes must still give each grant its own key.
	req := Request{Authority: "https://idp.example.com/t", TokenURL: "https://idp.example.com/t", ClientID: "c",
		Scopes: []string{"s"}, Credential: &credential.ClientSecret{Secret: "s3cret"},
		Exchange: &Exchange{Subject: SubjectToken{ID: "ns/sa", Type: TokenTypeJWT}},
		AWS:      &AWSRole{RoleARN: "arn:aws:iam::111122223333:role/r", SessionName: "s"}}
	keys := map[string]string{}
	for _, g := range []grant{entraGrant{}, clientCredentialsGrant{}, echoGrant{}, tokenExchangeGrant{}, awsGrant{}} {
		k := req.cacheKey(g)
		if other, ok := keys[k]; ok {
			t.Fatalf("%T and %s share a cache key", g, other)
		}
		keys[k] = fmt.Sprintf("%T", g)
		if g.keyParts(req)[0] == "" {
			t.Errorf("%T has no label", g)
		}
	}
	if req.CacheKey() != req.cacheKey(req.grant()) {
		t.Error("CacheKey is not the chosen grant's key")
	}
}

func TestEngineAppliesItsRulesToAnyGrant(t *testing.T) {
	secret := "s3cret-" + strings.Repeat("x", 20)
	good, goodCalls := echoServer(t, http.StatusOK)
	other, otherCalls := echoServer(t, http.StatusOK)
	base := Request{TokenURL: good.URL + "/token", ClientID: "c", Credential: &credential.ClientSecret{Secret: secret}, AllowedHosts: []string{hostOf(good)}}
	eng := New(Options{AllowHTTPLoopback: true})

	t.Run("the grant's own validation refuses before any call", func(t *testing.T) {
		req := base
		req.TokenURL = ""
		_, err := eng.fetch(context.Background(), echoGrant{}, req, nil)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "tokenURL" || !strings.Contains(ce.Message, "echo grant") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("the common checks follow the grant's", func(t *testing.T) {
		req := base
		req.AllowedHosts = []string{"https://" + hostOf(good)}
		var ce *ConfigError
		if err := req.validate(echoGrant{}); !errors.As(err, &ce) || ce.Field != "allowedHosts" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("every configured endpoint needs consent before anything is sent", func(t *testing.T) {
		g := echoGrant{second: other.URL + "/second", token: "t"}
		if err := base.checkConfiguredHosts(g); !errors.As(err, new(*HostNotAllowedError)) {
			t.Fatalf("consent check: %v", err)
		}
		_, err := eng.fetch(context.Background(), g, base, nil)
		var hna *HostNotAllowedError
		if !errors.As(err, &hna) || hna.Host != hostOf(other) {
			t.Fatalf("got %v", err)
		}
		if n := goodCalls.Load() + otherCalls.Load(); n != 0 {
			t.Fatalf("%d calls were made", n)
		}
	})
	t.Run("the operator's ceiling covers every configured endpoint", func(t *testing.T) {
		req := base
		req.AllowedHosts = nil
		ceiled := New(Options{AllowHTTPLoopback: true, AllowedIssuerHosts: []string{hostOf(good)}})
		err := ceiled.validate(echoGrant{second: other.URL + "/second"}, req)
		var hna *HostNotAllowedError
		if !errors.As(err, &hna) || !hna.ByOperator {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a call the grant makes elsewhere is refused by the guard", func(t *testing.T) {
		_, err := eng.fetch(context.Background(), echoGrant{detour: other.URL + "/detour", token: "t"}, base, nil)
		var hna *HostNotAllowedError
		if !errors.As(err, &hna) || hna.Host != hostOf(other) || otherCalls.Load() != 0 {
			t.Fatalf("got %v after %d calls", err, otherCalls.Load())
		}
	})
	t.Run("a secret the service echoes never reaches the error", func(t *testing.T) {
		refusing, _ := echoServer(t, http.StatusBadRequest)
		req := base
		req.TokenURL, req.AllowedHosts = refusing.URL+"/token", []string{hostOf(refusing)}
		_, err := eng.fetch(context.Background(), echoGrant{}, req, nil)
		if te := asError(t, err); te.Code != "echo_refused" {
			t.Fatalf("the grant's classify was not used: %v", err)
		}
		checkSafe(t, err, []string{secret})
	})
	t.Run("a timeout is the engine's, not the grant's", func(t *testing.T) {
		quick := New(Options{AllowHTTPLoopback: true, Timeout: 50 * time.Millisecond})
		_, err := quick.fetch(context.Background(), echoGrant{block: true}, base, nil)
		if te := asError(t, err); te.Code != "timeout" || !te.Retryable {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a token over the limit is dropped with the state that holds it", func(t *testing.T) {
		small := New(Options{AllowHTTPLoopback: true, MaxTokenBytes: 16})
		key := base.cacheKey(echoGrant{})
		small.state(key).tokenURL = "kept"
		_, err := small.fetch(context.Background(), echoGrant{token: strings.Repeat("t", 64)}, base, nil)
		if !errors.As(err, new(*TokenTooLargeError)) {
			t.Fatalf("got %v", err)
		}
		small.mu.Lock()
		_, kept := small.keys[key]
		small.mu.Unlock()
		if kept {
			t.Fatal("the grant's per-key state survived a refused token")
		}
	})
	t.Run("a good answer is the grant's token", func(t *testing.T) {
		tok, err := eng.fetch(context.Background(), echoGrant{token: "t"}, base, nil)
		if err != nil || tok.AccessToken != "t" {
			t.Fatalf("got %+v, %v", tok, err)
		}
	})
}

func TestGrantClassifyCannotLeakAnUntypedError(t *testing.T) {
	st := &callState{}
	st.addSecret("s3cret-value")
	err := New(Options{}).classify(rawGrant{}, context.Background(), context.Background(), st, errors.New("boom s3cret-value"))
	checkSafe(t, err, []string{"s3cret-value"})
	if te := asError(t, err); !te.Retryable {
		t.Fatalf("got %v", err)
	}
}

// rawGrant's classify hands back the library's error as it is.
type rawGrant struct{ echoGrant }

func (rawGrant) classify(_ *Engine, err error, _ []string) error { return err }

func TestInputHashKeepsTheLayoutStatusHolds(t *testing.T) {
	// Written by operators that built the hash outside the engine; a
	// change would renew every token at upgrade.
	const version = "Secret/ns/s@12"
	for want, req := range map[string]Request{
		"ac3fd0ca998371305a9ac81bfe9f931f229b95a15e8950da900e11ca86854844": {Authority: "https://login.microsoftonline.com/contoso/", AzureRegion: "westeurope", ClientID: "c", Scopes: []string{"b", "a"}},
		"7625b724824fd42496903b72e4f2f49d00a68a44088e9a85ffa6ac2abebb9327": {IssuerURL: "https://idp.example.com", ClientID: "c", Scopes: []string{"read", "write"}, ExtraParameters: map[string]string{"resource": "r", "audience": "a"}},
		"b5b0c34070c2f3c667d5dad894b3356609bcb22c288fa28279c87446785d8f0f": {TokenURL: "https://idp.example.com/token", ClientID: "c"},
	} {
		req.Credential = &credential.ClientSecret{Secret: "s3cret"}
		if got := req.InputHash(version); got != want {
			t.Errorf("%+v: InputHash = %s, want %s", req, got, want)
		}
	}
}

func TestInputHashSeparatesGrantsWithoutCredentialMaterial(t *testing.T) {
	req := Request{TokenURL: "https://idp.example.com/token", ClientID: "c", Credential: &credential.ClientSecret{Secret: "s3cret"}}
	rotated := req
	rotated.Credential = &credential.ClientSecret{Secret: "other-s3cret"}
	for _, g := range []grant{clientCredentialsGrant{}, echoGrant{}} {
		if req.inputHash(g, "v1") != rotated.inputHash(g, "v1") {
			t.Errorf("%T: the credential's material changed the hash; only its version may", g)
		}
		if req.inputHash(g, "v1") == req.inputHash(g, "v2") {
			t.Errorf("%T: a new credential version kept the hash", g)
		}
	}
	if req.inputHash(clientCredentialsGrant{}, "v1") == req.inputHash(echoGrant{}, "v1") {
		t.Error("two grants share an input hash")
	}
	// A grant whose inputs are the same strings still has its own hash.
	if req.inputHash(clientCredentialsGrant{}, "v1") == req.inputHash(mimicGrant{}, "v1") {
		t.Error("a grant with the client credentials inputs shares their hash")
	}
	other := req
	other.TokenURL = "https://other.example.com/token"
	if req.inputHash(echoGrant{}, "v1") == other.inputHash(echoGrant{}, "v1") {
		t.Error("a new grant's inputs are not in its hash")
	}
}

// mimicGrant's inputs are those of the client credentials grants.
type mimicGrant struct{ echoGrant }

func (mimicGrant) keyParts(r Request) []string {
	return []string{"mimic", r.Authority, r.IssuerURL, r.TokenURL, r.AzureRegion}
}

func TestServiceHostIsTheStartEndpoints(t *testing.T) {
	for want, req := range map[string]Request{
		"login.example.com":  {Authority: "https://login.example.com/contoso/"},
		"idp.example.com":    {IssuerURL: "https://idp.example.com/realms/a"},
		"token.example:8443": {TokenURL: "https://token.example:8443/token"},
		"":                   {TokenURL: "%zz"},
	} {
		if got := req.ServiceHost(); got != want {
			t.Errorf("%+v: ServiceHost = %q, want %q", req, got, want)
		}
	}
}

// noEndpointGrant names nowhere to send its request.
type noEndpointGrant struct{ echoGrant }

func (noEndpointGrant) endpoints(Request) []endpoint { return nil }

func TestAGrantWithoutEndpointIsRefused(t *testing.T) {
	req := Request{TokenURL: "https://idp.example.com/token", ClientID: "c", Credential: &credential.ClientSecret{Secret: "s3cret"}}
	_, err := New(Options{}).fetch(context.Background(), noEndpointGrant{}, req, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "no token service endpoint") {
		t.Fatalf("got %v", err)
	}
}
