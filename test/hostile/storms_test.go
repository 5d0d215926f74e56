//go:build linux

package hostile_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// A namespace editor forces refreshes in a loop, alone or with many
// TokenRequests at once on a client shared with other namespaces.
func TestHostileRefreshStormsStayWithinTheRates(t *testing.T) {
	t.Run("20 forced refreshes in 10 s make at most one call during them, and the last is made within the interval", forcedRefreshStorm)
	t.Run("many TokenRequests forcing at once on a shared client stay within the namespace's call rate", sharedClientStorm)
}

func forcedRefreshStorm(t *testing.T) {
	ns := k8s.NewNamespace(t)
	clientID, secret := entraApp(t)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "storm", clientID, "cred"))
	issued := k8s.WaitReady(t, ns, "storm").Status.LastRefreshTime.Time
	time.Sleep(time.Until(issued.Add(minRefreshInterval + time.Second))) // the first request is then made at once

	before := sts.TokenCalls(clientID)
	pending := false
	for i := range 20 {
		k8s.UpdateTR(t, ns, "storm", func(tr *v1.TokenRequest) {
			tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: fmt.Sprintf("storm-%d", i)}
		})
		time.Sleep(500 * time.Millisecond)
		pending = pending || k8s.GetTR(t, ns, "storm").Status.NextForcedRefreshTime != nil
	}
	lastWrite := time.Now()
	if n := sts.TokenCalls(clientID) - before; n > 1 {
		t.Errorf("20 forced refreshes in 10 s made %d token calls during them, want at most 1", n)
	}
	if !pending {
		t.Error("the status never said a forced refresh was pending (nextForcedRefreshTime)")
	}
	kube.Eventually(t, minRefreshInterval+5*time.Second, "the last refresh request to be made", func() bool {
		tr := k8s.GetTR(t, ns, "storm")
		s := k8s.GetSecret(t, ns, "storm")
		return tr.Status.LastRefreshRequestedAt == "storm-19" && s.Annotations[v1.AnnotationRefreshRequestedAt] == "storm-19"
	})
	if took := time.Since(lastWrite); took > minRefreshInterval+time.Second {
		t.Errorf("the last request was made %s after it was written, later than --min-refresh-interval (%s)", took, minRefreshInterval)
	}
	if n := sts.TokenCalls(clientID) - before; n > 2 {
		t.Errorf("the storm made %d token calls in all, want at most 2", n)
	}
	t.Logf("token calls for 20 forced refreshes: %d", sts.TokenCalls(clientID)-before)
	bystander(t)
}

func sharedClientStorm(t *testing.T) {
	const n = 40
	ns := k8s.NewNamespace(t)
	clientID, secret := entraApp(t)
	name := "shared-" + randomHex(4)
	credentialSecret(t, testenv.OperatorNamespace, name, secret, sts.Host())
	ci := &v1.ClusterTokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Authority: sts.Authority("contoso"), ClientID: clientID, AllowedScopes: []string{"api://storm-*/.default"},
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name}},
		}, AllowedNamespaces: &v1.AllowedNamespaces{Names: []string{ns}}},
	}
	k8s.MustCreate(t, ci)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ci) })

	calls := sampleCalls(clientID)
	var names []string
	for i := range n {
		tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("storm-%d", i)},
			Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: name},
				Scopes: []string{fmt.Sprintf("api://storm-%d/.default", i)}}} // one call each: no shared-cache hit
		sts.AddResource("contoso", fmt.Sprintf("api://storm-%d", i))
		k8s.MustCreate(t, tr)
		names = append(names, tr.Name)
	}
	var last time.Time
	for _, name := range names {
		if at := k8s.WaitReady(t, ns, name).Status.LastRefreshTime.Time; at.After(last) {
			last = at
		}
	}
	time.Sleep(time.Until(last.Add(minRefreshInterval + time.Second)))
	for _, name := range names {
		k8s.UpdateTR(t, ns, name, func(tr *v1.TokenRequest) {
			tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "all-at-once"}
		})
	}
	kube.Eventually(t, 30*time.Second, "every forced refresh to be made", func() bool {
		for _, name := range names {
			if k8s.GetTR(t, ns, name).Status.LastRefreshRequestedAt != "all-at-once" {
				return false
			}
		}
		return true
	})
	samples := calls()
	if got := samples[len(samples)-1].calls; got < 2*n {
		t.Fatalf("%d token calls for %d TokenRequests issued and forced once each, want %d", got, n, 2*n)
	}
	// In any stretch of time, no more calls than the burst plus the rate
	// allow (and one sample period of slack).
	worst := 0.0
	for i, a := range samples {
		for _, b := range samples[i+1:] {
			allowed := namespaceCallBurst + namespaceCallRate*(b.at.Sub(a.at)+sampleEvery).Seconds()
			if made := float64(b.calls - a.calls); made-allowed > worst {
				worst = made - allowed
			}
		}
	}
	if worst > 0 {
		t.Errorf("the namespace made %.0f token calls more than --token-call-burst-per-namespace=%d and --token-calls-per-namespace-per-second=%d allow", worst, namespaceCallBurst, namespaceCallRate)
	}
	bystander(t)
}

const sampleEvery = 100 * time.Millisecond

type callSample struct {
	at    time.Time
	calls int
}

// sampleCalls counts clientID's token calls at the server every
// sampleEvery until the returned function stops it and returns the samples.
func sampleCalls(clientID string) func() []callSample {
	var mu sync.Mutex
	var samples []callSample
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			mu.Lock()
			samples = append(samples, callSample{time.Now(), sts.TokenCalls(clientID)})
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() []callSample {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return append(append([]callSample(nil), samples...), callSample{time.Now(), sts.TokenCalls(clientID)})
	}
}
