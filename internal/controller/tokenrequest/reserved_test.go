package tokenrequest_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func teamIssuer(ns, name, cred, clientID string, allowedScopes []string) *v1.TokenIssuer {
	return &v1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Authority: sts.Authority("contoso"), ClientID: clientID, AllowedScopes: allowedScopes,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: cred}},
		}},
	}
}

func TestAReservedCredentialServesOnlyTheIssuersItNames(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	scope := "api://" + clientID + "/.default"
	cred := credentialSecret(t, ns, "team-app", secret, sts.Host())
	cred.Annotations[v1.AnnotationReservedFor] = "TokenIssuer/team"
	if err := k8s.Update(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	team := teamIssuer(ns, "team", "team-app", clientID, []string{scope})
	k8s.MustCreate(t, team)
	k8s.MustCreate(t, issuerRequest(ns, "allowed", v1.KindTokenIssuer, "team", scope))
	k8s.WaitReady(t, ns, "allowed")

	// With the token in the shared cache and the credential in the parsed
	// cache: the same client, scope and Secret named inline and through a
	// second issuer without allowedScopes.
	sneaky := teamIssuer(ns, "sneaky", "team-app", clientID, nil)
	k8s.MustCreate(t, sneaky)
	k8s.MustCreate(t, entraRequest(ns, "inline", clientID, "team-app"))
	k8s.MustCreate(t, issuerRequest(ns, "second", v1.KindTokenIssuer, "sneaky", scope))
	for _, name := range []string{"inline", "second"} {
		tr := k8s.WaitReason(t, ns, name, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
		msg := kube.Condition(tr, v1.ConditionReady).Message
		if !contains(msg, v1.AnnotationReservedFor) || !contains(msg, "TokenIssuer/team") {
			t.Errorf("%s: message does not name the annotation and the issuer it allows: %q", name, msg)
		}
		waitEvent(t, ns, name, v1.ReasonCredentialNotAllowed)
		if k8s.FindSecret(t, ns, name) != nil {
			t.Errorf("%s: an output Secret was written", name)
		}
	}
	kube.Eventually(t, 10*time.Second, "the second issuer to report the reservation", func() bool {
		if err := k8s.Get(context.Background(), objectKey(ns, "sneaky"), sneaky); err != nil {
			t.Fatal(err)
		}
		c := findCondition(sneaky.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonCredentialNotAllowed
	})
	waitIssuerReady(t, team, func() []metav1.Condition { return team.Status.Conditions })
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls, want the 1 of the issuer the credential is reserved for", n)
	}
}

func TestReservingACredentialLaterStopsItsOtherUsersAtTheirNextCall(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	cred := credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "inline", clientID, "cred"))
	k8s.WaitReady(t, ns, "inline")

	cred.Annotations[v1.AnnotationReservedFor] = "ClusterTokenIssuer/corp, not-an-issuer"
	if err := k8s.Update(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	k8s.UpdateTR(t, ns, "inline", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
	})
	tr := k8s.WaitReason(t, ns, "inline", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonCredentialNotAllowed)
	if msg := kube.Condition(tr, v1.ConditionStalled).Message; !contains(msg, "ClusterTokenIssuer/corp (and 1 entries") {
		t.Errorf("message: %q", msg)
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls, want 1: the forced refresh must be refused before any call", n)
	}
}

func TestAReservedServiceAccountFederatesOnlyForItsIssuer(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	issuer, keys := apiServerIssuer(t)
	clientID := newClientID()
	sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":workload", Audience: "api://AzureADTokenExchange", Keys: keys,
	}}})
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host(), v1.AnnotationReservedFor: "TokenIssuer/fed"}}})
	inline := entraRequest(ns, "inline", clientID, "")
	inline.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}
	k8s.MustCreate(t, inline)
	tr := k8s.WaitReason(t, ns, "inline", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !contains(msg, `ServiceAccount "workload" is reserved`) {
		t.Errorf("message: %q", msg)
	}
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Fatalf("%d token calls for a reserved ServiceAccount named inline", n)
	}

	k8s.MustCreate(t, &v1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "fed", Namespace: ns},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{Authority: sts.Authority("contoso"), ClientID: clientID,
			Credential: v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}}},
	})
	k8s.MustCreate(t, issuerRequest(ns, "via-issuer", v1.KindTokenIssuer, "fed", "api://"+clientID+"/.default"))
	k8s.WaitReady(t, ns, "via-issuer")
	if n := sts.FederatedTokenCalls(clientID); n != 1 {
		t.Errorf("federated token calls = %d, want the issuer's 1", n)
	}
}
