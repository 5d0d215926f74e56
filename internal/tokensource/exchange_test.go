package tokensource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/credential"
)

// exchangeServer is an RFC 8693 token endpoint on loopback: it checks the
// client (Basic), the grant type and the subject token, allows one
// audience, and answers a one-hour token.
func exchangeServer(t *testing.T, clientSecret, subject, audience string) (*httptest.Server, *atomic.Int32, chan map[string][]string) {
	t.Helper()
	var calls atomic.Int32
	forms := make(chan map[string][]string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		forms <- r.PostForm
		w.Header().Set("Content-Type", "application/json")
		fail := func(code, desc string) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		}
		id, secret, ok := r.BasicAuth()
		switch {
		case !ok || id != "client" || secret != clientSecret:
			fail("invalid_client", "bad client")
		case r.PostForm.Get("grant_type") != tokenExchangeGrantType:
			fail("unsupported_grant_type", "")
		case r.PostForm.Get("subject_token") != subject:
			// a careless server echoes what it was sent
			fail("invalid_grant", "subject token "+r.PostForm.Get("subject_token")+" is invalid")
		case r.PostForm.Get("audience") != audience:
			fail("invalid_target", "audience not allowed")
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "exchanged-" + audience, "issued_token_type": TokenTypeAccessToken,
				"token_type": "Bearer", "expires_in": 3600})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, forms
}

func exchangeRequest(srv *httptest.Server, subject string, expires time.Time, provided *atomic.Int32) Request {
	return Request{TokenURL: srv.URL + "/token", ClientID: "client", Credential: &credential.ClientSecret{Secret: "client-s3cret"},
		AllowedHosts: []string{hostOf(srv)}, Scopes: []string{"read"},
		Exchange: &Exchange{Audience: "orders", Resources: []string{"https://orders.example/", "https://stock.example/"},
			Subject: SubjectToken{ID: "ns/sa/uid/aud", Type: TokenTypeJWT, Provide: func(context.Context) (string, time.Time, error) {
				if provided != nil {
					provided.Add(1)
				}
				return subject, expires, nil
			}}}}
}

func TestTokenExchangeGetsATokenThatDoesNotOutliveItsSubject(t *testing.T) {
	const subject = "subject-jwt-value-1234567890"
	srv, _, forms := exchangeServer(t, "client-s3cret", subject, "orders")
	eng := New(Options{AllowHTTPLoopback: true})
	subjectExpires := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	tok, err := eng.Fetch(context.Background(), exchangeRequest(srv, subject, subjectExpires, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "exchanged-orders" {
		t.Fatalf("token %q", tok.AccessToken)
	}
	if !tok.ExpiresAt.Equal(subjectExpires) {
		t.Errorf("expires %v, want the subject's %v", tok.ExpiresAt, subjectExpires)
	}
	f := <-forms
	for k, want := range map[string][]string{
		"subject_token_type": {TokenTypeJWT}, "requested_token_type": {TokenTypeAccessToken},
		"resource": {"https://orders.example/", "https://stock.example/"}, "scope": {"read"},
	} {
		if !slices.Equal(f[k], want) {
			t.Errorf("%s = %q, want %q", k, f[k], want)
		}
	}
	if _, ok := f["client_secret"]; ok {
		t.Error("the client secret went in the form as well as in Basic")
	}

	t.Run("a subject that outlives the answer does not lengthen it", func(t *testing.T) {
		tok, err := eng.Fetch(context.Background(), exchangeRequest(srv, subject, time.Now().Add(48*time.Hour), nil), nil)
		<-forms
		if err != nil || tok.ExpiresAt.After(time.Now().Add(time.Hour+time.Minute)) {
			t.Fatalf("%v, expires %v", err, tok.ExpiresAt)
		}
	})
}

func TestTokenExchangeRefusalsCarryTheServersErrorWithoutTokens(t *testing.T) {
	const subject = "subject-jwt-value-1234567890"
	srv, _, forms := exchangeServer(t, "client-s3cret", subject, "orders")
	eng := New(Options{AllowHTTPLoopback: true})
	for _, tc := range []struct {
		name, subject, audience, code string
	}{
		{"invalid subject token", "forged-subject-token-0987654321", "orders", "invalid_grant"},
		{"audience not allowed", subject, "payroll", "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := exchangeRequest(srv, tc.subject, time.Time{}, nil)
			req.Exchange.Audience = tc.audience
			_, err := eng.Fetch(context.Background(), req, nil)
			<-forms
			var te *Error
			if !errors.As(err, &te) || te.Code != tc.code || te.Retryable || te.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %#v", err)
			}
			if te.MetricCode() != tc.code {
				t.Errorf("metric code %q", te.MetricCode())
			}
			checkSafe(t, err, []string{tc.subject, "client-s3cret"})
		})
	}
}

func TestTokenExchangeSendsNothingToAHostWithoutConsent(t *testing.T) {
	srv, calls, _ := exchangeServer(t, "client-s3cret", "s", "orders")
	var provided atomic.Int32
	req := exchangeRequest(srv, "s", time.Time{}, &provided)
	req.AllowedHosts = []string{"idp.example.com"}
	_, err := New(Options{AllowHTTPLoopback: true}).Fetch(context.Background(), req, nil)
	var he *HostNotAllowedError
	if !errors.As(err, &he) {
		t.Fatalf("got %v", err)
	}
	if calls.Load() != 0 || provided.Load() != 0 {
		t.Fatalf("%d calls, %d subject tokens obtained", calls.Load(), provided.Load())
	}
}

func TestTokenExchangeValidation(t *testing.T) {
	srv, _, _ := exchangeServer(t, "x", "s", "orders")
	for field, change := range map[string]func(*Request){
		"tokenExchange.subjectToken":       func(r *Request) { r.Exchange.Subject.Provide = nil },
		"tokenExchange.subjectTokenType":   func(r *Request) { r.Exchange.Subject.Type = "jwt with space" },
		"tokenExchange.requestedTokenType": func(r *Request) { r.Exchange.RequestedTokenType = "plain" },
		"tokenExchange.resource":           func(r *Request) { r.Exchange.Resources = []string{"relative/path"} },
		"extraParameters":                  func(r *Request) { r.ExtraParameters = map[string]string{"subject_token": "x"} },
		"authority":                        func(r *Request) { r.Authority = "https://login.example.com/t" },
	} {
		req := exchangeRequest(srv, "s", time.Time{}, nil)
		change(&req)
		var ce *ConfigError
		if err := req.Validate(); !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
	if err := exchangeRequest(srv, "s", time.Time{}, nil).Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(exchangeRequest(srv, "s", time.Time{}, nil).grant().keyParts(Request{Exchange: &Exchange{}})[0], "exchange") {
		t.Error("the exchange is not the chosen grant")
	}
}

// What the exchange asks for is part of the key and the input hash; the
// subject token itself is in neither (a fresh one each call).
func TestTokenExchangeSettingsSeparateTokens(t *testing.T) {
	srv, _, _ := exchangeServer(t, "x", "s", "orders")
	base := exchangeRequest(srv, "one-subject-token", time.Time{}, nil)
	same := exchangeRequest(srv, "another-subject-token", time.Time{}, nil)
	if base.CacheKey() != same.CacheKey() || base.InputHash("v") != same.InputHash("v") {
		t.Error("the subject token's value changed the key or the hash")
	}
	for name, change := range map[string]func(*Exchange){
		"audience":       func(x *Exchange) { x.Audience = "payroll" },
		"resource":       func(x *Exchange) { x.Resources = x.Resources[:1] },
		"subject":        func(x *Exchange) { x.Subject.ID = "ns/other/uid/aud" },
		"subject type":   func(x *Exchange) { x.Subject.Type = TokenTypeAccessToken },
		"requested type": func(x *Exchange) { x.RequestedTokenType = "urn:ietf:params:oauth:token-type:jwt" },
	} {
		other := exchangeRequest(srv, "s", time.Time{}, nil)
		change(other.Exchange)
		if other.CacheKey() == base.CacheKey() || other.InputHash("v") == base.InputHash("v") {
			t.Errorf("a change of %s kept the key or the hash", name)
		}
	}
}

// A subject token that cannot be minted is named as the subject, not as
// the client's assertion, and nothing is sent.
func TestTokenExchangeNamesAFailedSubjectToken(t *testing.T) {
	srv, calls, _ := exchangeServer(t, "client-s3cret", "s", "orders")
	req := exchangeRequest(srv, "s", time.Time{}, nil)
	req.Exchange.Subject.Provide = func(context.Context) (string, time.Time, error) {
		return "", time.Time{}, errors.New("the API server is unavailable")
	}
	_, err := New(Options{AllowHTTPLoopback: true}).Fetch(context.Background(), req, nil)
	var te *Error
	if !errors.As(err, &te) || te.Code != "credential_unavailable" || !te.Retryable {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(te.Description, "the token exchange's subject token could not be obtained: the API server is unavailable") ||
		strings.Contains(te.Description, "assertion") {
		t.Errorf("description %q", te.Description)
	}
	if calls.Load() != 0 {
		t.Errorf("%d calls without a subject token", calls.Load())
	}
}

// Without client authentication the form carries client_id (when set) and
// the subject, and no secret, Basic header or assertion goes anywhere.
func TestTokenExchangeWithoutClientAuthentication(t *testing.T) {
	headers := make(chan http.Header, 4)
	forms := make(chan map[string][]string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		headers <- r.Header
		forms <- r.PostForm
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "public-exchanged", "token_type": "Bearer", "expires_in": 600})
	}))
	t.Cleanup(srv.Close)
	eng := New(Options{AllowHTTPLoopback: true})
	for _, clientID := range []string{"public-client", ""} {
		req := exchangeRequest(srv, "subject-token-value", time.Time{}, nil)
		req.Credential, req.ClientID, req.Exchange.NoClientAuth = nil, clientID, true
		tok, err := eng.Fetch(context.Background(), req, nil)
		if err != nil || tok.AccessToken != "public-exchanged" {
			t.Fatalf("client %q: %v", clientID, err)
		}
		h, f := <-headers, <-forms
		if h.Get("Authorization") != "" || f["client_secret"] != nil || f["client_assertion"] != nil {
			t.Errorf("client %q: client authentication was sent: %q %v", clientID, h.Get("Authorization"), f)
		}
		if got := f["client_id"]; (clientID == "" && got != nil) || (clientID != "" && !slices.Equal(got, []string{clientID})) {
			t.Errorf("client_id = %q, want %q", got, clientID)
		}
		if !slices.Equal(f["subject_token"], []string{"subject-token-value"}) {
			t.Errorf("subject_token = %q", f["subject_token"])
		}
	}
	withCredential := exchangeRequest(srv, "s", time.Time{}, nil)
	withCredential.Exchange.NoClientAuth = true
	var ce *ConfigError
	if err := withCredential.Validate(); !errors.As(err, &ce) || ce.Field != "credential" {
		t.Errorf("a credential without client authentication: %v", err)
	}
	authenticated := exchangeRequest(srv, "s", time.Time{}, nil)
	public := exchangeRequest(srv, "s", time.Time{}, nil)
	public.Credential, public.Exchange.NoClientAuth = nil, true
	if authenticated.CacheKey() == public.CacheKey() || authenticated.InputHash("v") == public.InputHash("v") {
		t.Error("client authentication does not separate tokens")
	}
}

// An actor token goes in the form with its type, is part of the key, and
// a failure to get it is named as the actor's.
func TestTokenExchangeSendsTheActorToken(t *testing.T) {
	const subject = "subject-jwt-value-1234567890"
	srv, _, forms := exchangeServer(t, "client-s3cret", subject, "orders")
	eng := New(Options{AllowHTTPLoopback: true})
	req := exchangeRequest(srv, subject, time.Time{}, nil)
	plain := req.CacheKey()
	req.Exchange.Actor = &SubjectToken{ID: "ns/actor/uid/aud", Type: TokenTypeJWT, Provide: func(context.Context) (string, time.Time, error) {
		return "actor-jwt-value-0987654321", time.Time{}, nil
	}}
	if _, err := eng.Fetch(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	f := <-forms
	if !slices.Equal(f["actor_token"], []string{"actor-jwt-value-0987654321"}) || !slices.Equal(f["actor_token_type"], []string{TokenTypeJWT}) {
		t.Errorf("actor_token %q, actor_token_type %q", f["actor_token"], f["actor_token_type"])
	}
	if req.CacheKey() == plain {
		t.Error("the actor does not separate tokens")
	}
	req.Exchange.Actor.Provide = func(context.Context) (string, time.Time, error) { return "", time.Time{}, errors.New("minting failed") }
	_, err := eng.Fetch(context.Background(), req, nil)
	var te *Error
	if !errors.As(err, &te) || !strings.Contains(te.Description, "the token exchange's actor token could not be obtained: minting failed") {
		t.Errorf("got %v", err)
	}
}

// An exchange server's outage is retryable and keeps its Retry-After, as
// for client credentials: the reconciler's backoff and storm floor, which
// do not depend on the grant, then apply.
func TestTokenExchangeOutageIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}))
	t.Cleanup(srv.Close)
	_, err := New(Options{AllowHTTPLoopback: true}).Fetch(context.Background(), exchangeRequest(srv, "s", time.Time{}, nil), nil)
	var te *Error
	if !errors.As(err, &te) || !te.Retryable || te.RetryAfter != 30*time.Second {
		t.Fatalf("got %#v", err)
	}
}
