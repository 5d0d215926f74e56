//go:build linux

package hostile_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// A namespace editor aims token exchanges whose subject is a TokenRequest
// (tokenRequestRef) at a collector of its own: naming another namespace's
// TokenRequest (the API takes a name only, so it is looked up at home), a
// cycle, and a subject whose Secret it replaced by a huge value; and an
// actor, and a subject without client authentication, whose
// ServiceAccounts do not consent to the collector. The
// collector must see no request, and a bystander is served throughout.
func TestHostileTokenRequestRefsSendNoOtherToken(t *testing.T) {
	var calls atomic.Int32
	collector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "{}", http.StatusBadRequest)
	}))
	t.Cleanup(collector.Close)
	collectorHost := host(collector.URL)

	// The victim's TokenRequest, with a token, in a namespace of its own.
	victim := k8s.NewNamespace(t)
	clientID, secret := entraApp(t)
	credentialSecret(t, victim, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(victim, "payroll", clientID, "cred"))
	k8s.WaitReady(t, victim, "payroll")

	ns := k8s.NewNamespace(t)
	credentialSecret(t, ns, "client", "client-s3cret-chain", collectorHost)
	exchange := func(name, subject string) {
		k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.TokenRequestSpec{TokenURL: collector.URL + "/token", ClientID: "x",
				Credential:    &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "client"}},
				TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: subject}}}}})
	}
	// Its own TokenRequest with a real token, whose Secret it then bloats.
	ownID, ownSecret := entraApp(t)
	credentialSecret(t, ns, "own-cred", ownSecret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "own", ownID, "own-cred"))
	k8s.WaitReady(t, ns, "own")
	s := k8s.GetSecret(t, ns, "own")
	s.Data[v1.KeyAccessToken] = []byte(strings.Repeat("A", 900<<10))
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}

	// A ServiceAccount that consents only to the real token service, as the
	// actor of an exchange, and as the subject of one without client
	// authentication (then nothing else guards the host).
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "honest", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}}})
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "consenting", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: collectorHost}}})
	k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "actor-no-consent"},
		Spec: v1.TokenRequestSpec{TokenURL: collector.URL + "/token", ClientID: "x",
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "client"}},
			TokenExchange: &v1.TokenExchange{
				SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "consenting", Audience: "collector"}},
				ActorToken:   &v1.ExchangeActor{ServiceAccount: &v1.ServiceAccountCredential{Name: "honest", Audience: "collector"}}}}})
	k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "public-no-consent"},
		Spec: v1.TokenRequestSpec{TokenURL: collector.URL + "/token",
			TokenExchange: &v1.TokenExchange{ClientAuthentication: v1.ExchangeClientAuthNone,
				SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "honest", Audience: "collector"}}}}})
	exchange("other-namespace", "payroll")
	exchange("cycle-a", "cycle-b")
	exchange("cycle-b", "cycle-a")
	exchange("bloated", "own")
	bystander(t)

	for name, want := range map[string]struct {
		reason  string
		message *regexp.Regexp
	}{
		"other-namespace":   {v1.ReasonSubjectTokenNotReady, regexp.MustCompile(`TokenRequest "payroll" \(the token exchange's subject\) not found in namespace "` + ns + `"`)},
		"cycle-a":           {v1.ReasonInvalidSpec, regexp.MustCompile(`cycle \(cycle-a → cycle-b → cycle-a\)`)},
		"cycle-b":           {v1.ReasonInvalidSpec, regexp.MustCompile(`cycle \(cycle-b → cycle-a → cycle-b\)`)},
		"bloated":           {v1.ReasonSubjectTokenNotReady, regexp.MustCompile(`TokenRequest "own" .* has no token in Secret "own"`)},
		"actor-no-consent":  {v1.ReasonCredentialNotAllowed, regexp.MustCompile(`ServiceAccount "honest" does not allow`)},
		"public-no-consent": {v1.ReasonCredentialNotAllowed, regexp.MustCompile(`ServiceAccount "honest" does not allow`)},
	} {
		tr := waitReason(t, ns, name, []string{want.reason}, 20*time.Second)
		if msg := kube.Condition(tr, v1.ConditionReady).Message; !want.message.MatchString(msg) || len(msg) > 1024 {
			t.Errorf("%s: message %q does not match %q", name, msg, want.message)
		}
	}
	bystander(t)
	if n := calls.Load(); n != 0 {
		t.Errorf("the collector got %d token exchange requests", n)
	}
	if rss, err := mgr.peakRSS(); err == nil && rss > peakRSSLimit {
		t.Errorf("manager peak RSS %d MiB is above %d MiB", rss>>20, peakRSSLimit>>20)
	}
}
