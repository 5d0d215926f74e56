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

func TestARotatedCredentialMintsANewTokenAtOnce(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, oldSecret := app(t, 3600)
	newSecret := "rotated+" + randomHex(8)
	secretsUsed.Store(newSecret, true)
	cred := credentialSecret(t, ns, "cred", oldSecret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "rot", clientID, "cred"))
	k8s.WaitReady(t, ns, "rot")
	before := string(k8s.GetSecret(t, ns, "rot").Data[v1.KeyAccessToken])
	// The app now accepts only the new secret, so a new token proves it was used.
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{newSecret}, ExpiresIn: 3600})

	cred.StringData = map[string]string{"clientSecret": newSecret}
	if err := k8s.Update(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 15*time.Second, "a token minted with the rotated secret", func() bool {
		return string(k8s.GetSecret(t, ns, "rot").Data[v1.KeyAccessToken]) != before
	})
	if n := sts.TokenCalls(clientID); n != 2 {
		t.Errorf("token calls = %d, want 2", n)
	}
}

func TestASpecChangeMintsATokenForTheNewSpec(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "spec", clientID, "cred"))
	k8s.WaitReady(t, ns, "spec")
	before := string(k8s.GetSecret(t, ns, "spec").Data[v1.KeyAccessToken])

	k8s.UpdateTR(t, ns, "spec", func(tr *v1.TokenRequest) { tr.Spec.Scopes = []string{"https://graph.microsoft.com/.default"} })
	kube.Eventually(t, 15*time.Second, "a token for the new scope", func() bool {
		tr := k8s.GetTR(t, ns, "spec")
		return string(k8s.GetSecret(t, ns, "spec").Data[v1.KeyAccessToken]) != before &&
			len(tr.Status.Scopes) == 1 && tr.Status.Scopes[0] == "https://graph.microsoft.com/.default"
	})
	if got := sts.LastForm(clientID).Get("scope"); !contains(got, "https://graph.microsoft.com/.default") {
		t.Errorf("the last call asked for scope %q", got)
	}
}

func TestADeletedSecretIsRestoredWithoutCallingTheTokenService(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "del", clientID, "cred"))
	k8s.WaitReady(t, ns, "del")
	s := k8s.GetSecret(t, ns, "del")
	token := string(s.Data[v1.KeyAccessToken])
	if err := k8s.Delete(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the Secret restored", func() bool {
		got := k8s.FindSecret(t, ns, "del")
		return got != nil && got.UID != s.UID && string(got.Data[v1.KeyAccessToken]) == token
	})
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("restoring the Secret called the token service: %d calls", n)
	}
}

func TestASecretEditedByHandIsRestored(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "edit", clientID, "cred"))
	k8s.WaitReady(t, ns, "edit")
	s := k8s.GetSecret(t, ns, "edit")
	token := string(s.Data[v1.KeyAccessToken])
	s.Data[v1.KeyAccessToken] = []byte("tampered")
	s.Data["extra"] = []byte("x")
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the Secret's data restored", func() bool {
		got := k8s.GetSecret(t, ns, "edit")
		_, extra := got.Data["extra"]
		return string(got.Data[v1.KeyAccessToken]) == token && !extra
	})
}

func TestAForeignSecretIsNeverTouchedUnlessItAllowsAdoption(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns}, StringData: map[string]string{"password": "hunter2"}}
	k8s.MustCreate(t, foreign)
	created := foreign.ResourceVersion
	tr := entraRequest(ns, "wants-taken", clientID, "cred")
	tr.Spec.SecretName = "taken"
	k8s.MustCreate(t, tr)

	got := k8s.WaitReason(t, ns, "wants-taken", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonSecretConflict)
	if !contains(kube.Condition(got, v1.ConditionReady).Message, v1.AnnotationAllowAdoption) {
		t.Errorf("the message does not say how to allow adoption: %s", kube.Condition(got, v1.ConditionReady).Message)
	}
	waitEvent(t, ns, "wants-taken", v1.ReasonSecretConflict)
	// A second pass, seen through observedGeneration, leaves it alone too.
	if c := kube.Condition(k8s.SeeReconcile(t, ns, "wants-taken"), v1.ConditionReady); c.Reason != v1.ReasonSecretConflict {
		t.Errorf("after a second pass Ready is %s", kube.Describe(c))
	}
	s := k8s.GetSecret(t, ns, "taken")
	if s.ResourceVersion != created || string(s.Data["password"]) != "hunter2" || len(s.Data) != 1 {
		t.Fatalf("the foreign Secret was modified: resourceVersion %s → %s, data %v, labels %v, owners %v", created, s.ResourceVersion, s.Data, s.Labels, s.OwnerReferences)
	}
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Errorf("a conflict still called the token service %d times", n)
	}

	s.Annotations = map[string]string{v1.AnnotationAllowAdoption: "true"}
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	k8s.WaitReady(t, ns, "wants-taken")
	s = k8s.GetSecret(t, ns, "taken")
	if !issuedBySTS(string(s.Data[v1.KeyAccessToken])) || s.Labels[v1.LabelTokenRequest] != "wants-taken" {
		t.Errorf("the adopted Secret holds no token or no label")
	}
}

func TestAMissingCredentialIsReportedAndPickedUpWhenItAppears(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	k8s.MustCreate(t, entraRequest(ns, "nocred", clientID, "later"))
	tr := k8s.WaitReason(t, ns, "nocred", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotFound)
	if !contains(kube.Condition(tr, v1.ConditionReady).Message, `"later"`) {
		t.Errorf("message does not name the Secret: %s", kube.Condition(tr, v1.ConditionReady).Message)
	}
	waitEvent(t, ns, "nocred", v1.ReasonCredentialNotFound)

	credentialSecret(t, ns, "later", secret, sts.Host())
	k8s.WaitReady(t, ns, "nocred")
}

func TestAMissingKeyInTheCredentialSecretIsCredentialNotFound(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "nokey", clientID, "cred")
	tr.Spec.Credential.ClientSecret.Key = "other"
	k8s.MustCreate(t, tr)
	got := k8s.WaitReason(t, ns, "nokey", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotFound)
	if !contains(kube.Condition(got, v1.ConditionReady).Message, `"other"`) {
		t.Errorf("message does not name the key: %s", kube.Condition(got, v1.ConditionReady).Message)
	}
}

func TestAnUnparsableCertificateIsInvalidCredential(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, _ := app(t, 3600)
	bad := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cert", Namespace: ns, Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}},
		Type:       corev1.SecretTypeTLS,
		StringData: map[string]string{"tls.crt": "not a certificate", "tls.key": "not a key"},
	}
	k8s.MustCreate(t, bad)
	tr := entraRequest(ns, "badcert", clientID, "")
	tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: "cert"}}
	k8s.MustCreate(t, tr)
	k8s.WaitReason(t, ns, "badcert", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonInvalidCredential)
	waitEvent(t, ns, "badcert", v1.ReasonInvalidCredential)
}

// The operator's own Secrets live only in its Secret cache, not in the
// metadata cache: a TokenRequest waiting for another one's Secret name must
// still hear when that Secret goes.
func TestATokenRequestWaitingForAnotherOnesSecretNameGetsItWhenItIsFreed(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	holder := entraRequest(ns, "holder", clientID, "cred")
	holder.Spec.SecretName = "shared"
	k8s.MustCreate(t, holder)
	k8s.WaitReady(t, ns, "holder")
	waiter := entraRequest(ns, "waiter", clientID, "cred")
	waiter.Spec.SecretName = "shared"
	k8s.MustCreate(t, waiter)
	k8s.WaitReason(t, ns, "waiter", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonSecretConflict)

	k8s.UpdateTR(t, ns, "holder", func(tr *v1.TokenRequest) { tr.Spec.SecretName = "elsewhere" })
	k8s.WaitReady(t, ns, "waiter")
	if s := k8s.GetSecret(t, ns, "shared"); s.Labels[v1.LabelTokenRequest] != "waiter" || !issuedBySTS(string(s.Data[v1.KeyAccessToken])) {
		t.Errorf("the freed name went to %q", s.Labels[v1.LabelTokenRequest])
	}
}
