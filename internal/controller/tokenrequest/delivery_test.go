package tokenrequest_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func TestASecretTemplateShapesTheSecret(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "templated", clientID, "cred")
	tr.Spec.SecretName = "api-auth"
	tr.Spec.SecretTemplate = &v1.SecretTemplate{
		Labels:      map[string]string{"team": "payments"},
		Annotations: map[string]string{"example.com/owner": "payments"},
		Data:        map[string]string{"authorization": "{{ .TokenType }} {{ .AccessToken }}", "client": "{{ .ClientID }}"},
	}
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "templated")
	s := k8s.GetSecret(t, ns, "api-auth")
	token := string(s.Data[v1.KeyAccessToken])
	if got := string(s.Data["authorization"]); got != "Bearer "+token {
		t.Errorf("authorization = %q", got)
	}
	if string(s.Data["client"]) != clientID || s.Labels["team"] != "payments" || s.Annotations["example.com/owner"] != "payments" {
		t.Errorf("template not applied: data keys %d, labels %v", len(s.Data), s.Labels)
	}

	// A template change re-renders without a new call.
	k8s.UpdateTR(t, ns, "templated", func(tr *v1.TokenRequest) {
		tr.Spec.SecretTemplate.Data = map[string]string{"header": "Authorization: Bearer {{ .AccessToken }}"}
	})
	kube.Eventually(t, 10*time.Second, "the new template rendered", func() bool {
		s := k8s.GetSecret(t, ns, "api-auth")
		_, old := s.Data["authorization"]
		return string(s.Data["header"]) == "Authorization: Bearer "+token && !old
	})
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("re-rendering called the token service: %d calls", n)
	}
}

func TestABrokenTemplateIsReportedBeforeAnyCall(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "broken", clientID, "cred")
	tr.Spec.SecretTemplate = &v1.SecretTemplate{Data: map[string]string{"x": "{{ .NoSuchField }}"}}
	k8s.MustCreate(t, tr)
	got := k8s.WaitReason(t, ns, "broken", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonInvalidTemplate)
	if !contains(kube.Condition(got, v1.ConditionReady).Message, `secretTemplate.data["x"]`) {
		t.Errorf("message does not name the key: %s", kube.Condition(got, v1.ConditionReady).Message)
	}
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Errorf("%d calls for a broken template", n)
	}
}

func TestRetainLeavesNoOwnerReferenceAndDeleteDoes(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	retained := entraRequest(ns, "retained", clientID, "cred")
	retained.Spec.DeletionPolicy = v1.DeletionPolicyRetain
	k8s.MustCreate(t, retained)
	k8s.MustCreate(t, entraRequest(ns, "deleted", clientID, "cred"))
	k8s.WaitReady(t, ns, "retained")
	k8s.WaitReady(t, ns, "deleted")
	if refs := k8s.GetSecret(t, ns, "retained").OwnerReferences; len(refs) != 0 {
		t.Errorf("a Retain Secret has owner references %v", refs)
	}
	// envtest runs no garbage collector. What it would act on is the
	// reference: the TokenRequest as controller, blocking its owner's
	// foreground deletion until the Secret is gone.
	owner := k8s.GetTR(t, ns, "deleted")
	want := metav1.OwnerReference{
		APIVersion: v1.GroupVersion.String(), Kind: "TokenRequest", Name: owner.Name, UID: owner.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
	if refs := k8s.GetSecret(t, ns, "deleted").OwnerReferences; len(refs) != 1 || !equality.Semantic.DeepEqual(refs[0], want) {
		t.Errorf("a Delete Secret's owner references are %+v, want only %+v", refs, want)
	}
	// Nor does the operator delete a Retain Secret itself.
	deleteAndSeeForgotten(t, ns, "retained")
	if s := k8s.FindSecret(t, ns, "retained"); s == nil || s.Data[v1.KeyAccessToken] == nil {
		t.Errorf("the retained Secret went away with its TokenRequest")
	}
}

func TestANewTokenRestartsTheRolloutTargets(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	labels := map[string]string{"app": "api"}
	k8s.MustCreate(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "example.com/api:1"}}},
			},
		},
	})
	tr := entraRequest(ns, "restarts", clientID, "cred")
	tr.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{{Kind: "StatefulSet", Name: "missing"}, {Kind: "Deployment", Name: "api"}}
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "restarts")
	kube.Eventually(t, 10*time.Second, "the Deployment restarted", func() bool {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), objectKey(ns, "api"), d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations[v1.AnnotationRestartedAt] != ""
	})
	notes := waitEvent(t, ns, "restarts", v1.ReasonRolloutRestartFailed)
	if !contains(notes[0], `StatefulSet "missing"`) {
		t.Errorf("the failure does not name the target: %s", notes[0])
	}
}
