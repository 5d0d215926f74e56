package issuer

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// secrets reads the Secrets it holds; everything else is not found.
type secrets []*corev1.Secret

func (s secrets) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	for _, sec := range s {
		if out, ok := obj.(*corev1.Secret); ok && sec.Namespace == key.Namespace && sec.Name == key.Name {
			*out = *sec
			return nil
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
}

type allowAll struct{}

func (allowAll) Validate(tokensource.Request) error { return nil }

// Ready says whether the issuer can be used, with the resolver's reason
// when not, and Stalled mirrors it.
func TestReadyCarriesTheResolversReasonAndStalledMirrorsIt(t *testing.T) {
	cred := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "cred", UID: "u", ResourceVersion: "1",
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"}}, Data: map[string][]byte{"clientSecret": []byte("s")}}
	for _, tc := range []struct {
		name   string
		held   secrets
		status metav1.ConditionStatus
		reason string
	}{
		{"usable", secrets{cred}, metav1.ConditionTrue, v1.ReasonIssuerChecked},
		{"its Secret is missing", nil, metav1.ConditionFalse, v1.ReasonCredentialNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reconciler{Kind: v1.KindTokenIssuer, Resolver: &resolve.Resolver{Cached: tc.held, Direct: tc.held, Metadata: tc.held, Policy: allowAll{}}}
			obj := r.newObject()
			ti := obj.Object.(*v1.TokenIssuer)
			ti.Namespace, ti.Name = "team-a", "corp"
			ti.Spec.IssuerSpec = v1.IssuerSpec{TokenURL: "https://sts.example.com/token", ClientID: "app",
				Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "cred"}}}
			ready, err := r.check(context.Background(), obj)
			if err != nil || ready.Status != tc.status || ready.Reason != tc.reason {
				t.Fatalf("check = %+v, %v; want %s %s", ready, err, tc.status, tc.reason)
			}
			stalled := stalledFor(ready)
			if (stalled.Status == metav1.ConditionTrue) != (tc.status != metav1.ConditionTrue) {
				t.Errorf("Stalled %s with Ready %s", stalled.Status, ready.Status)
			}
		})
	}
}
