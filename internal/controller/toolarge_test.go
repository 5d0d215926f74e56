package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/tokensource"
)

func TestClassifyTokenTooLargeAsTerminal(t *testing.T) {
	err := error(&tokensource.TokenTooLargeError{Size: 900 << 10, Max: 64 << 10})
	for _, e := range []error{err, (issuing{issuer: "ClusterTokenIssuer//corp/uid", label: `ClusterTokenIssuer "corp"`}).wrap(err)} {
		reason, retryable, after := classify(e)
		if reason != v1.ReasonTokenTooLarge || retryable || after != 0 {
			t.Errorf("classify(%v) = %s, retryable %v, after %s", e, reason, retryable, after)
		}
	}
	if !stalls(v1.ReasonTokenTooLarge) {
		t.Error("TokenTooLarge does not stall: it would be retried with the short backoff")
	}
}

func TestATooLargeTokenIsWrittenNowhereAndBacksOff(t *testing.T) {
	large := &tokensource.TokenTooLargeError{Size: 900 << 10, Max: 64 << 10}
	t.Run("a first token", func(t *testing.T) {
		o := planObserved(planRequest("first"))
		o.fetched = &fetched{err: large}
		p := decide(o)
		if p.write != nil {
			t.Fatalf("a Secret was written: %s", p.why)
		}
		ready := meta.FindStatusCondition(p.status.Conditions, v1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1.ReasonTokenTooLarge || ready.Message != large.Error() {
			t.Fatalf("Ready: %+v", ready)
		}
		if p.status.NextRetryTime == nil || p.status.NextRetryTime.Time.Before(planNow.Add(50*time.Second)) {
			t.Errorf("next retry at %v: a terminal failure waits about a minute first", p.status.NextRetryTime)
		}
		if len(p.events) != 1 || p.events[0].reason != v1.ReasonTokenTooLarge {
			t.Errorf("events %+v", p.events)
		}
	})
	t.Run("a refresh keeps the last good token", func(t *testing.T) {
		issuedAt := planNow.Add(-40 * time.Minute)
		o := planObserved(planRequest("refresh"))
		o.now = issuedAt
		p := issue(t, o, token(issuedAt, 0))
		next := afterWrite(o, p, planNow)
		next.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
		next.fetched = &fetched{err: large}
		q := decide(next)
		if q.write != nil && string(q.write.secret.Data[v1.KeyAccessToken]) != string(next.output.Data[v1.KeyAccessToken]) {
			t.Fatalf("the Secret's token was replaced")
		}
		stalled := meta.FindStatusCondition(q.status.Conditions, v1.ConditionStalled)
		ready := meta.FindStatusCondition(q.status.Conditions, v1.ConditionReady)
		if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != v1.ReasonTokenTooLarge || ready == nil || ready.Status != metav1.ConditionTrue {
			t.Fatalf("Stalled %+v, Ready %+v", stalled, ready)
		}
		// The next pass, a moment later, makes no call: no tight loop.
		again := afterWrite(next, plan{status: q.status, write: &secretWrite{secret: next.output}}, planNow.Add(5*time.Second))
		again.tr.Annotations = next.tr.Annotations
		if r := decide(again); r.call {
			t.Errorf("a pass 5 s later calls again: %s (%s)", r.action, r.why)
		}
	})
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
