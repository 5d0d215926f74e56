package tokencache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Real MSAL Go against the fake Entra ID: concurrent misses collapse into
// one call per key.
func TestSharedTokensCallTheTokenServiceOncePerKey(t *testing.T) {
	sts := entraserver.New()
	defer sts.Close()
	engine := tokensource.New(tokensource.Options{RootCAs: sts.CertPool()})
	shared := NewSharedTokens(engine, clock.RealClock{}, 10*time.Second, metrics.New(prometheus.NewRegistry()))

	request := func(i int) tokensource.Request {
		id := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		sts.AddApp(entraserver.App{ClientID: id, Secrets: []string{"secret-" + id}, ExpiresIn: 3600})
		return tokensource.Request{Authority: sts.Authority("contoso"), ClientID: id, Scopes: []string{"api://" + id + "/.default"},
			Credential: &credential.ClientSecret{Secret: "secret-" + id}, AllowedHosts: []string{sts.Host()}}
	}
	cases := []struct {
		name      string
		keys      int
		wantCalls int
	}{
		{"100 concurrent requests for one key cause one call", 1, 1},
		{"100 concurrent requests over 10 keys cause 10 calls", 10, 10},
	}
	offset := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs := make([]tokensource.Request, tc.keys)
			for k := range reqs {
				reqs[k] = request(offset + k)
			}
			offset += tc.keys
			before := sts.TotalTokenCalls()
			// A slow first answer makes every caller arrive while the call is under way.
			sts.InjectFaults(entraserver.Fault{Delay: 300 * time.Millisecond})
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					tok, err := shared.Token(context.Background(), fmt.Sprintf("ns/tr-%d", i), reqs[i%tc.keys], nil)
					if err == nil && tok.AccessToken == "" {
						err = fmt.Errorf("empty token")
					}
					errs <- err
				}(i)
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if calls := sts.TotalTokenCalls() - before; calls != tc.wantCalls {
				t.Errorf("%d token-service calls, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// A refused token never reaches the shared cache, on the Entra path
// (MSAL) or the generic one, and the next attempt calls the service again.
func TestATooLargeTokenIsNotCachedBySharedTokens(t *testing.T) {
	sts := entraserver.New()
	defer sts.Close()
	const id = "00000000-0000-0000-0000-000000000001"
	sts.AddApp(entraserver.App{ClientID: id, Secrets: []string{"secret-" + id}, ExpiresIn: 3600})
	engine := tokensource.New(tokensource.Options{RootCAs: sts.CertPool(), MaxTokenBytes: 4096})
	shared := NewSharedTokens(engine, clock.RealClock{}, 10*time.Second, metrics.New(prometheus.NewRegistry()))
	base := tokensource.Request{ClientID: id, Scopes: []string{"api://" + id + "/.default"},
		Credential: &credential.ClientSecret{Secret: "secret-" + id}, AllowedHosts: []string{sts.Host()}}
	entra, generic := base, base
	entra.Authority = sts.Authority("contoso")
	generic.TokenURL = sts.TokenURL("contoso")
	huge := fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, strings.Repeat("a", 8192))
	for name, req := range map[string]tokensource.Request{"Entra": entra, "generic": generic} {
		t.Run(name, func(t *testing.T) {
			sts.InjectFaults(entraserver.Fault{Body: huge})
			before := sts.TokenCalls(id)
			_, err := shared.Token(context.Background(), "ns/"+name, req, nil)
			var large *tokensource.TokenTooLargeError
			if !errors.As(err, &large) {
				t.Fatalf("Token = %v, want TokenTooLargeError", err)
			}
			if shared.cache.Len() != 0 || shared.cache.Bytes() != 0 {
				t.Fatalf("the shared cache holds %d entries, %d bytes", shared.cache.Len(), shared.cache.Bytes())
			}
			if _, ok := shared.Cached("ns/"+name, req, func(tokensource.Token) bool { return true }); ok {
				t.Fatal("a refused token is served from the cache")
			}
			tok, err := shared.Token(context.Background(), "ns/"+name, req, nil)
			if err != nil || len(tok.AccessToken) > 4096 || sts.TokenCalls(id)-before != 2 {
				t.Fatalf("the next attempt: %v, %d bytes, %d calls in all", err, len(tok.AccessToken), sts.TokenCalls(id)-before)
			}
			shared.Forget("ns/" + name)
		})
	}
}
