package controller

import (
	"context"
	"fmt"
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
