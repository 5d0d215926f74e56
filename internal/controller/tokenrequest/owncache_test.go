package tokenrequest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/tokenrequest"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// lookalike is a Secret labelled and annotated as the output of the
// TokenRequest name, as any namespace editor can write one.
func lookalike(ns, name string, dataBytes int) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelTokenRequest: name},
			Annotations: map[string]string{v1.AnnotationTokenRequestName: name},
		},
		Data: map[string][]byte{v1.KeyAccessToken: []byte(strings.Repeat("x", dataBytes))},
	}
}

func TestALabelledSecretNoTokenRequestWantsIsCachedWithoutItsData(t *testing.T) {
	managed, _ := startManagerWithCache(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "wanted", clientID, "cred"))
	k8s.WaitReady(t, ns, "wanted")
	k8s.MustCreate(t, lookalike(ns, "borrowed", 100<<10))

	var cached corev1.Secret
	kube.Eventually(t, 10*time.Second, "the labelled Secret in the operator's cache", func() bool {
		return managed.Get(context.Background(), objectKey(ns, "borrowed"), &cached) == nil
	})
	if len(cached.Data) != 0 || tokenrequest.CachedWithoutData(&cached) != tokenrequest.WithoutDataUnclaimed {
		t.Errorf("the cache holds %d data keys of a Secret no TokenRequest wants (marked %q)", len(cached.Data), tokenrequest.CachedWithoutData(&cached))
	}
	var ours corev1.Secret
	if err := managed.Get(context.Background(), objectKey(ns, "wanted"), &ours); err != nil || len(ours.Data[v1.KeyAccessToken]) == 0 {
		t.Errorf("the cache does not hold the operator's own Secret whole: %v", err)
	}
}

func TestASecretCraftedAsAnOutputButLargerThanOursIsAConflictAndLeftAlone(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	crafted := lookalike(ns, "crafted", tokenrequest.MaxOwnSecretBytes(0)+1)
	k8s.MustCreate(t, crafted)
	version := crafted.ResourceVersion

	k8s.MustCreate(t, entraRequest(ns, "crafted", clientID, "cred"))
	defer func() {
		if t.Failed() {
			t.Logf("Ready: %s", kube.Describe(kube.Condition(k8s.GetTR(t, ns, "crafted"), v1.ConditionReady)))
		}
	}()
	kube.Eventually(t, 15*time.Second, "a SecretConflict naming the size", func() bool {
		c := kube.Condition(k8s.GetTR(t, ns, "crafted"), v1.ConditionReady)
		return c != nil && c.Reason == v1.ReasonSecretConflict && strings.Contains(c.Message, "more data than this operator ever writes")
	})
	if got := k8s.GetSecret(t, ns, "crafted"); got.ResourceVersion != version {
		t.Errorf("the oversized Secret was written: version %s, created as %s", got.ResourceVersion, version)
	}
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Errorf("%d token calls for a TokenRequest whose Secret name is taken", n)
	}
}

func TestATokenRequestRecreatedOverItsRetainedSecretKeepsItsToken(t *testing.T) {
	managed, _ := startManagerWithCache(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "again", clientID, "cred")
	tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "again")
	token := string(k8s.GetSecret(t, ns, "again").Data[v1.KeyAccessToken])

	if err := k8s.Delete(context.Background(), k8s.GetTR(t, ns, "again")); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the TokenRequest gone", func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), objectKey(ns, "again"), &v1.TokenRequest{}))
	})
	// A change while no TokenRequest wants the Secret: the cache keeps it
	// without its data from then on.
	s := k8s.GetSecret(t, ns, "again")
	s.Annotations["example.com/touched"] = "yes"
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the retained Secret cached without its data", func() bool {
		var cached corev1.Secret
		return managed.Get(context.Background(), objectKey(ns, "again"), &cached) == nil && tokenrequest.CachedWithoutData(&cached) == tokenrequest.WithoutDataUnclaimed
	})

	tr = entraRequest(ns, "again", clientID, "cred")
	tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "again")
	if got := string(k8s.GetSecret(t, ns, "again").Data[v1.KeyAccessToken]); got != token {
		t.Error("the recreated TokenRequest replaced the retained token")
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls; the retained token was still good", n)
	}
}
