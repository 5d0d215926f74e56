package tokenrequest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// exchangeService is an RFC 8693 token endpoint on plain-http loopback that
// exchanges any non-empty subject token and counts the exchanges.
type exchangeService struct {
	*httptest.Server
	mu       sync.Mutex
	subjects []string
}

func newExchangeService(t *testing.T) *exchangeService {
	s := &exchangeService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		subject := r.PostForm.Get("subject_token")
		if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" || subject == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		s.mu.Lock()
		s.subjects = append(s.subjects, subject)
		n := len(s.subjects)
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "exchanged-" + strings.Repeat("x", n), "token_type": "Bearer",
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": 3600})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *exchangeService) first() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subjects[0]
}

func (s *exchangeService) exchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subjects)
}

// A restarted operator neither exchanges a tokenRequestRef subject again
// nor rewrites anything while both tokens are valid: the subject's version
// in the inputs is the same for the new process.
func TestARestartedOperatorDoesNotExchangeAgain(t *testing.T) {
	loopback := func(o *operator.Options) { o.AllowHTTPLoopback = true }
	stop := startManager(t, loopback)
	xs := newExchangeService(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	credentialSecret(t, ns, "exchange-cred", "exchange-s3cret", strings.TrimPrefix(xs.URL, "http://"))
	k8s.MustCreate(t, entraRequest(ns, "login", clientID, "cred"))
	k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exchanged"},
		Spec: v1.TokenRequestSpec{TokenURL: xs.URL + "/token", ClientID: "exchanger",
			Credential:    &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "exchange-cred"}},
			TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: "login"}}}}})
	names := []string{"login", "exchanged"}
	for _, n := range names {
		k8s.WaitReady(t, ns, n)
	}
	if got, want := xs.first(), string(k8s.GetSecret(t, ns, "login").Data[v1.KeyAccessToken]); got != want {
		t.Fatal("the exchange did not send the subject TokenRequest's token")
	}
	stop()
	versions := map[string]string{}
	for _, n := range names {
		versions["tr/"+n] = k8s.GetTR(t, ns, n).ResourceVersion
		versions["secret/"+n] = k8s.GetSecret(t, ns, n).ResourceVersion
	}
	exchanges, calls := xs.exchanges(), sts.TokenCalls(clientID)
	metrics.Default().ResetTokens()

	startManager(t, loopback)
	kube.Eventually(t, 20*time.Second, "the new manager to reconcile", func() bool {
		return reconciledSince(t, ns, names)
	})
	time.Sleep(2 * time.Second)
	if got := xs.exchanges(); got != exchanges {
		t.Errorf("the restart caused %d exchanges", got-exchanges)
	}
	if got := sts.TokenCalls(clientID); got != calls {
		t.Errorf("the restart caused %d calls for the subject", got-calls)
	}
	for _, n := range names {
		if rv := k8s.GetTR(t, ns, n).ResourceVersion; rv != versions["tr/"+n] {
			t.Errorf("TokenRequest %s was written after the restart", n)
		}
		if rv := k8s.GetSecret(t, ns, n).ResourceVersion; rv != versions["secret/"+n] {
			t.Errorf("Secret %s was written after the restart", n)
		}
	}
}
