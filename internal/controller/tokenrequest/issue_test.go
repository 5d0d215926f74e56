package tokenrequest_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func TestAClientSecretTokenRequestBecomesReadyAndKeepsItsSecretFresh(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 10)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "graph", clientID, "cred"))

	tr := k8s.WaitReady(t, ns, "graph")
	s := k8s.GetSecret(t, ns, "graph")
	if s == nil || !issuedBySTS(string(s.Data[v1.KeyAccessToken])) {
		t.Fatalf("the Secret does not hold a token from the token service")
	}
	if string(s.Data[v1.KeyTokenType]) != "Bearer" || s.Data[v1.KeyExpiresAt] == nil {
		t.Errorf("token_type/expires_at wrong: %q %q", s.Data[v1.KeyTokenType], s.Data[v1.KeyExpiresAt])
	}
	if s.Labels[v1.LabelManagedBy] != v1.ManagedByValue || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != tr.UID {
		t.Errorf("the Secret is not owned and labelled: %v %v", s.Labels, s.OwnerReferences)
	}
	if tr.Status.SecretName != "graph" || tr.Status.ExpiresAt == nil || tr.Status.RefreshAt == nil || tr.Status.TokenType != "Bearer" {
		t.Errorf("status incomplete: %+v", tr.Status)
	}
	if !tr.Status.RefreshAt.Before(tr.Status.ExpiresAt) {
		t.Errorf("refresh %v is not before expiry %v", tr.Status.RefreshAt, tr.Status.ExpiresAt)
	}
	waitEvent(t, ns, "graph", v1.ReasonIssued)

	// Three refreshes in a row, each written before the previous token expired.
	token, expires := string(s.Data[v1.KeyAccessToken]), parseExpiry(t, s)
	for i := 0; i < 3; i++ {
		kube.Eventually(t, 15*time.Second, "a refreshed token", func() bool {
			s = k8s.FindSecret(t, ns, "graph")
			return s != nil && string(s.Data[v1.KeyAccessToken]) != token
		})
		if now := time.Now(); !now.Before(expires) {
			t.Fatalf("refresh %d came at %v, after the previous token expired at %v", i+1, now, expires)
		}
		if !issuedBySTS(string(s.Data[v1.KeyAccessToken])) {
			t.Fatalf("refresh %d wrote a token the service never issued", i+1)
		}
		token, expires = string(s.Data[v1.KeyAccessToken]), parseExpiry(t, s)
	}
	tr = k8s.GetTR(t, ns, "graph")
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonRefreshed {
		t.Errorf("Ready after refreshes = %s/%s", c.Status, c.Reason)
	}
	waitEvent(t, ns, "graph", v1.ReasonRefreshed)
}

func parseExpiry(t *testing.T, s *corev1.Secret) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
	if err != nil {
		t.Fatalf("expires_at: %v", err)
	}
	return at
}

func TestFiftyTokenRequestsSharingOneCredentialCauseOneTokenServiceCall(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "shared", secret, sts.Host())
	for i := 0; i < 50; i++ {
		k8s.MustCreate(t, entraRequest(ns, "tr-"+itoa(i), clientID, "shared"))
	}
	for i := 0; i < 50; i++ {
		k8s.WaitReady(t, ns, "tr-"+itoa(i))
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Fatalf("50 TokenRequests caused %d token-service calls, want 1", n)
	}
	first := string(k8s.GetSecret(t, ns, "tr-"+itoa(0)).Data[v1.KeyAccessToken])
	for i := 1; i < 50; i++ {
		if got := string(k8s.GetSecret(t, ns, "tr-"+itoa(i)).Data[v1.KeyAccessToken]); got != first {
			t.Fatalf("TokenRequest %d holds another token", i)
		}
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func TestARestartedOperatorCausesNoCallsAndNoWritesWhileTokensAreValid(t *testing.T) {
	stop := startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	names := []string{"one", "two", "three"}
	for _, n := range names {
		k8s.MustCreate(t, entraRequest(ns, n, clientID, "cred"))
	}
	versions := map[string]string{}
	for _, n := range names {
		k8s.WaitReady(t, ns, n)
	}
	stop()
	before := map[string]v1.TokenRequestStatus{}
	for _, n := range names {
		before[n] = k8s.GetTR(t, ns, n).Status
		versions["tr/"+n] = k8s.GetTR(t, ns, n).ResourceVersion
		versions["secret/"+n] = k8s.GetSecret(t, ns, n).ResourceVersion
	}
	calls := sts.TokenCalls(clientID)
	metrics.Default().ResetTokens()

	startManager(t)
	// A new process has reconciled everything once it reports readiness for each.
	kube.Eventually(t, 20*time.Second, "the new manager to reconcile", func() bool {
		return reconciledSince(t, ns, names)
	})
	time.Sleep(2 * time.Second)
	if got := sts.TokenCalls(clientID); got != calls {
		t.Errorf("the restart caused %d token-service calls", got-calls)
	}
	for _, n := range names {
		if rv := k8s.GetTR(t, ns, n).ResourceVersion; rv != versions["tr/"+n] {
			t.Errorf("TokenRequest %s was written after the restart:\n%+v\n%+v", n, before[n], k8s.GetTR(t, ns, n).Status)
		}
		if rv := k8s.GetSecret(t, ns, n).ResourceVersion; rv != versions["secret/"+n] {
			t.Errorf("Secret %s was written after the restart", n)
		}
	}
}

func TestAForcedRefreshGetsANewTokenAndIsRecorded(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "forced", clientID, "cred"))
	k8s.WaitReady(t, ns, "forced")
	before := string(k8s.GetSecret(t, ns, "forced").Data[v1.KeyAccessToken])

	k8s.UpdateTR(t, ns, "forced", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "2026-11-23T10:00:00Z"}
	})
	kube.Eventually(t, 15*time.Second, "a new token after the forced refresh", func() bool {
		return string(k8s.GetSecret(t, ns, "forced").Data[v1.KeyAccessToken]) != before
	})
	kube.Eventually(t, 5*time.Second, "the request recorded in status", func() bool {
		return k8s.GetTR(t, ns, "forced").Status.LastRefreshRequestedAt == "2026-11-23T10:00:00Z"
	})
	if n := sts.TokenCalls(clientID); n != 2 {
		t.Errorf("token calls = %d, want 2", n)
	}
}

func TestAManagerLimitedToNamespacesIgnoresOthers(t *testing.T) {
	watched, ignored := k8s.NewNamespace(t), k8s.NewNamespace(t)
	startManager(t, func(o *operator.Options) { o.Namespaces = []string{watched} })
	clientID, secret := app(t, 3600)
	// The ignored one first: a manager watching every namespace would see
	// it before the watched one, so the watched one being Ready says such
	// a manager had it in its queue; the wait is room for that pass.
	for _, ns := range []string{ignored, watched} {
		credentialSecret(t, ns, "cred", secret, sts.Host())
		k8s.MustCreate(t, entraRequest(ns, "scoped", clientID, "cred"))
	}
	k8s.WaitReady(t, watched, "scoped")
	time.Sleep(2 * time.Second)
	if tr := k8s.GetTR(t, ignored, "scoped"); len(tr.Status.Conditions) != 0 || k8s.FindSecret(t, ignored, "scoped") != nil {
		t.Errorf("the manager acted in a namespace it does not watch")
	}
}

func TestTheTokenServicesRefreshHintIsHonoured(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID := newClientID()
	secret := "hinted-" + randomHex(8)
	secretsUsed.Store(secret, true)
	// An hour-long token that Entra asks to refresh after 4 seconds (refresh_in).
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: 3600, RefreshIn: 4})
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "hinted", clientID, "cred"))
	tr := k8s.WaitReady(t, ns, "hinted")
	if d := tr.Status.RefreshAt.Sub(tr.Status.LastRefreshTime.Time); d > 5*time.Second {
		t.Errorf("refresh planned %v after issue, want the 4 s hint", d)
	}
	before := string(k8s.GetSecret(t, ns, "hinted").Data[v1.KeyAccessToken])
	kube.Eventually(t, 15*time.Second, "a refresh at the hinted time", func() bool {
		return string(k8s.GetSecret(t, ns, "hinted").Data[v1.KeyAccessToken]) != before
	})
}
