package interop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// A token exchange whose subject is another TokenRequest's token
// (tokenRequestRef), against zitadel/oidc's op, which takes its own access
// tokens as subject tokens.

// zAllowedAudience is the one audience zExchanger's exchanges may ask for.
const zAllowedAudience = "orders-api"

// chainedRequest exchanges TokenRequest subject's token at the op as client
// zExchanger.
func chainedRequest(t *testing.T, ns, name, subject string) {
	t.Helper()
	zCredential(t, ns, name+"-cred", zExchanger, zRightSecret)
	zCreateTokenRequest(t, &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
			Credential:    &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred"}},
			TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: subject}}}},
	})
}

func secretToken(t *testing.T, ns, name string) (string, time.Time) {
	t.Helper()
	s := k8s.GetSecret(t, ns, name)
	exp, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
	if err != nil {
		t.Fatalf("%s expires_at: %v", name, err)
	}
	return string(s.Data[v1.KeyAccessToken]), exp
}

func TestATokenRequestsTokenIsExchangedWithZitadelOPAndAgainWhenRefreshed(t *testing.T) {
	ns := k8s.NewNamespace(t)
	ctx := context.Background()
	// The exchange comes first and waits for its subject.
	chainedRequest(t, ns, "exchanged", "login")
	tr := k8s.WaitReason(t, ns, "exchanged", v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonSubjectTokenNotReady)
	if msg := kube.Condition(tr, v1.ConditionReconciling).Message; !strings.Contains(msg, `TokenRequest "login"`) {
		t.Errorf("Reconciling message does not name the subject: %s", msg)
	}
	zCredential(t, ns, "login-cred", zExchanger, zRightSecret)
	zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "login", Namespace: ns},
		Spec: v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "login-cred"}}}})

	// Picked up from the subject's Secret being written, well before the
	// one-minute recheck.
	start := time.Now()
	k8s.WaitReady(t, ns, "login")
	k8s.WaitReady(t, ns, "exchanged")
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the exchange took %s after its subject was written", d)
	}
	subject, subjectExp := secretToken(t, ns, "login")
	exchanged, exp := secretToken(t, ns, "exchanged")
	if exchanged == subject {
		t.Fatal("the exchanged Secret holds the subject token")
	}
	claims, err := zsrv.VerifyAccessToken(ctx, exchanged)
	if err != nil {
		t.Fatalf("the exchanged token does not verify with the server's JWKS: %v", err)
	}
	if claims.Subject != zExchanger || claims.ClientID != zExchanger {
		t.Errorf("exchanged token for sub %q client_id %q", claims.Subject, claims.ClientID)
	}
	if exp.After(subjectExp) {
		t.Errorf("the exchanged token expires at %s, after its subject (%s)", exp, subjectExp)
	}

	// A refreshed subject is exchanged again, without a call of its own.
	login := k8s.GetTR(t, ns, "login")
	metav1.SetMetaDataAnnotation(&login.ObjectMeta, v1.AnnotationRefreshRequestedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if err := k8s.Update(ctx, login); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 30*time.Second, "the subject to be refreshed", func() bool {
		tok, _ := secretToken(t, ns, "login")
		return tok != subject
	})
	newSubject, newSubjectExp := secretToken(t, ns, "login")
	kube.Eventually(t, 30*time.Second, "the exchanged token to be exchanged again", func() bool {
		tok, _ := secretToken(t, ns, "exchanged")
		return tok != exchanged
	})
	again, againExp := secretToken(t, ns, "exchanged")
	if _, err := zsrv.VerifyAccessToken(ctx, again); err != nil {
		t.Fatalf("the new exchanged token does not verify: %v", err)
	}
	if againExp.After(newSubjectExp) || newSubject == again {
		t.Errorf("the new exchanged token expires at %s, its subject at %s", againExp, newSubjectExp)
	}
}

// A subject the server cannot verify (an opaque Hydra token) is refused
// with the server's own error, shown in status without either token.
func TestZitadelOPRefusesASubjectTokenOfAnotherServer(t *testing.T) {
	ns := k8s.NewNamespace(t)
	ctx := context.Background()
	id := hydra.ClientID("foreign-subject")
	const secret = "foreign-subject-secret"
	if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	clientSecretCredential(t, ns, "hydra-cred", secret)
	createTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "hydra-login", Namespace: ns},
		Spec: v1.TokenRequestSpec{IssuerURL: srv.IssuerURL(), ClientID: id, Scopes: []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "hydra-cred"}}}})
	chainedRequest(t, ns, "exchanged", "hydra-login")

	k8s.WaitReady(t, ns, "hydra-login")
	tr := k8s.WaitReason(t, ns, "exchanged", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	t.Logf("status: %s", msg)
	if !strings.Contains(msg, "invalid_request") && !strings.Contains(msg, "invalid_grant") {
		t.Errorf("Stalled message lacks the server's error: %s", msg)
	}
	subject, _ := secretToken(t, ns, "hydra-login")
	if strings.Contains(msg, subject) || strings.Contains(msg, zRightSecret) {
		t.Errorf("Stalled message shows the subject token or the client secret: %s", msg)
	}
	if s := k8s.FindSecret(t, ns, "exchanged"); s != nil {
		t.Error("a refused exchange got a Secret")
	}
}

// zitadel/oidc's op authenticates every token exchange client: one sent
// without client authentication is refused with the server's error, and
// nothing but the subject token and client_id went out.
func TestZitadelOPRefusesAnExchangeWithoutClientAuthentication(t *testing.T) {
	ns := k8s.NewNamespace(t)
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: zHost}}})
	zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "public", Namespace: ns},
		Spec: v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
			TokenExchange: &v1.TokenExchange{ClientAuthentication: v1.ExchangeClientAuthNone, SubjectToken: v1.ExchangeSubject{
				ServiceAccount: &v1.ServiceAccountCredential{Name: "worker", Audience: zSubjectAudience}}}}})
	tr := k8s.WaitReason(t, ns, "public", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	t.Logf("status: %s", msg)
	if !strings.Contains(msg, "invalid_client") {
		t.Errorf("Stalled message lacks the server's error: %s", msg)
	}
	if strings.Contains(msg, "eyJ") {
		t.Errorf("Stalled message shows a token: %s", msg)
	}
}

// An actor ServiceAccount's token goes with the subject's; the server
// verifies both against the API server's keys.
func TestZitadelOPExchangesWithAnActorToken(t *testing.T) {
	ns := k8s.NewNamespace(t)
	zCredential(t, ns, "cred", zExchanger, zRightSecret)
	for _, sa := range []string{"worker", "agent"} {
		k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns,
			Annotations: map[string]string{v1.AnnotationAllowedIssuers: zHost}}})
	}
	spec := func(actorAudience string) v1.TokenRequestSpec {
		return v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "cred"}},
			TokenExchange: &v1.TokenExchange{
				SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "worker", Audience: zSubjectAudience}},
				ActorToken:   &v1.ExchangeActor{ServiceAccount: &v1.ServiceAccountCredential{Name: "agent", Audience: actorAudience}}}}
	}
	zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "delegated", Namespace: ns}, Spec: spec(zSubjectAudience)})
	zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "bad-actor", Namespace: ns}, Spec: spec("someone-else")})

	k8s.WaitReady(t, ns, "delegated")
	claims, err := zsrv.VerifyAccessToken(context.Background(), string(k8s.GetSecret(t, ns, "delegated").Data[v1.KeyAccessToken]))
	if err != nil {
		t.Fatalf("the exchanged token does not verify: %v", err)
	}
	if want := "system:serviceaccount:" + ns + ":worker"; claims.Subject != want {
		t.Errorf("token for sub %q, want %q", claims.Subject, want)
	}
	tr := k8s.WaitReason(t, ns, "bad-actor", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	t.Logf("status: %s", msg)
	if !strings.Contains(msg, "actor_token") || strings.Contains(msg, "eyJ") {
		t.Errorf("Stalled message lacks the server's refusal of the actor token, or shows a token: %s", msg)
	}
}

// The server allows zExchanger one audience: asking for it gets a token,
// asking for another is refused with the server's invalid_target.
func TestZitadelOPRefusesAnAudienceItDoesNotAllow(t *testing.T) {
	ns := k8s.NewNamespace(t)
	zCredential(t, ns, "login-cred", zExchanger, zRightSecret)
	zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "login", Namespace: ns},
		Spec: v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "login-cred"}}}})
	for name, audience := range map[string]string{"allowed": zAllowedAudience, "payroll": "payroll-api"} {
		zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
				Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "login-cred"}},
				TokenExchange: &v1.TokenExchange{Audience: audience,
					SubjectToken: v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: "login"}}}}})
	}
	k8s.WaitReady(t, ns, "allowed")
	tr := k8s.WaitReason(t, ns, "payroll", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	t.Logf("status: %s", msg)
	if !strings.Contains(msg, "invalid_target") || !strings.Contains(msg, "payroll-api") {
		t.Errorf("Stalled message lacks the server's invalid_target: %s", msg)
	}
	if s := k8s.FindSecret(t, ns, "payroll"); s != nil {
		t.Error("a refused audience got a token")
	}
}
