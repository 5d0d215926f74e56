package tokensource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
)

func tokenAnswer(size int) string {
	return fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, strings.Repeat("a", size))
}

func TestTokensLargerThanTheCapAreRefused(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	secret := &credential.ClientSecret{Secret: "a-good-secret"}
	const limit = 1000
	flows := map[string]func(string, credential.Credential) Request{"Entra": f.entraReq, "OIDC issuer": f.issuerReq, "token URL": f.tokenReq}
	for name, mk := range flows {
		t.Run(name, func(t *testing.T) {
			eng := New(Options{RootCAs: f.srv.CertPool(), MaxTokenBytes: limit})
			req := mk("app", secret)
			// access_token plus "Bearer" at the limit passes, one byte more does not.
			f.srv.InjectFaults(entraserver.Fault{Body: tokenAnswer(limit - len("Bearer"))})
			tok, err := eng.Fetch(context.Background(), req, nil)
			if err != nil || len(tok.AccessToken) != limit-len("Bearer") {
				t.Fatalf("a token at the limit: %d bytes, %v", len(tok.AccessToken), err)
			}
			eng.Forget(req.CacheKey())
			f.srv.InjectFaults(entraserver.Fault{Body: tokenAnswer(limit - len("Bearer") + 1)})
			tok, err = eng.Fetch(context.Background(), req, nil)
			var tl *TokenTooLargeError
			if !errors.As(err, &tl) || tl.Size != limit+1 || tl.Max != limit || tok.AccessToken != "" {
				t.Fatalf("a token over the limit: %T %v, %d bytes returned", err, err, len(tok.AccessToken))
			}
			if msg := err.Error(); !strings.Contains(msg, "--max-token-bytes") || strings.Contains(msg, "aaaa") {
				t.Errorf("message %q does not name the flag or holds the token", msg)
			}
			// Nothing kept it: the next call goes to the network and gets an ordinary token.
			before := f.srv.TokenCalls("app")
			tok, err = eng.Fetch(context.Background(), req, nil)
			if err != nil || tok.FromCache || len(tok.AccessToken) > limit {
				t.Fatalf("after a refused token: %v, from cache %v, %d bytes", err, tok.FromCache, len(tok.AccessToken))
			}
			if n := f.srv.TokenCalls("app") - before; n != 1 {
				t.Errorf("%d token calls after a refused token, want 1", n)
			}
		})
	}
}

func TestTheDefaultTokenCapIs64KiB(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	req := f.tokenReq("app", &credential.ClientSecret{Secret: "a-good-secret"})
	eng := New(Options{RootCAs: f.srv.CertPool()})
	f.srv.InjectFaults(entraserver.Fault{Body: tokenAnswer(63 << 10)})
	if _, err := eng.Fetch(context.Background(), req, nil); err != nil {
		t.Fatalf("a 63 KiB token: %v", err)
	}
	f.srv.InjectFaults(entraserver.Fault{Body: tokenAnswer(64 << 10)})
	_, err := eng.Fetch(context.Background(), req, nil)
	var tl *TokenTooLargeError
	if !errors.As(err, &tl) || tl.Max != DefaultMaxTokenBytes || DefaultMaxTokenBytes != 64<<10 {
		t.Fatalf("a 64 KiB token with its type: %v", err)
	}
}
