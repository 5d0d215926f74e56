package tokenrequest_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func TestACredentialWithoutConsentIsNeverSentAndAnnotatingItProceeds(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	cred := credentialSecret(t, ns, "cred", secret, "")
	k8s.MustCreate(t, entraRequest(ns, "consent", clientID, "cred"))

	tr := k8s.WaitReason(t, ns, "consent", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	msg := kube.Condition(tr, v1.ConditionReady).Message
	want := "kubectl annotate secret cred -n " + ns + " " + v1.AnnotationAllowedIssuers + "=" + sts.Host()
	if !strings.Contains(msg, want) || !strings.Contains(msg, sts.Host()) {
		t.Errorf("message %q does not give %q", msg, want)
	}
	waitEvent(t, ns, "consent", v1.ReasonCredentialNotAllowed)
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Fatalf("the credential reached the token service %d times without consent", n)
	}

	cred.Annotations = map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}
	if err := k8s.Update(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	k8s.WaitReady(t, ns, "consent")
}

func TestACredentialAllowedForAnotherHostIsRefused(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	// localhost and 127.0.0.1 reach the same server but are different hosts.
	credentialSecret(t, ns, "cred", secret, "localhost:"+sts.Port())
	k8s.MustCreate(t, entraRequest(ns, "elsewhere", clientID, "cred"))
	tr := k8s.WaitReason(t, ns, "elsewhere", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !strings.Contains(msg, "--overwrite") || !strings.Contains(msg, "localhost:"+sts.Port()+","+sts.Host()) {
		t.Errorf("message does not extend the existing list: %s", msg)
	}
	// A second pass, seen through observedGeneration, refuses again.
	if c := kube.Condition(k8s.SeeReconcile(t, ns, "elsewhere"), v1.ConditionReady); c.Reason != v1.ReasonCredentialNotAllowed {
		t.Errorf("after a second pass Ready is %s", kube.Describe(c))
	}
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Fatalf("%d calls reached the refused host", n)
	}
}

func TestADiscoveryDocumentPointingAtAnotherHostIsRefused(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	tenant := "disco-" + randomHex(4)
	sts.AddTenant(tenant)
	sts.EditDiscovery(func(tn string, doc map[string]any) {
		if tn == tenant {
			doc["token_endpoint"] = sts.LocalhostURL() + "/" + tenant + "/oauth2/v2.0/token"
		}
	})
	t.Cleanup(func() { sts.EditDiscovery(nil) })
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "disco", clientID, "cred")
	tr.Spec.Authority, tr.Spec.IssuerURL = "", sts.Issuer(tenant)
	k8s.MustCreate(t, tr)

	got := k8s.WaitReason(t, ns, "disco", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	if msg := kube.Condition(got, v1.ConditionReady).Message; !strings.Contains(msg, "localhost:"+sts.Port()) {
		t.Errorf("message does not name the refused host: %s", msg)
	}
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Fatalf("%d token calls despite the refused discovery result", n)
	}
}
