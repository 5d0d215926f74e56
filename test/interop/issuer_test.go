package interop_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// A ClusterTokenIssuer for a Hydra client serves two namespaces with one
// token, and its scope policy refuses a scope Hydra would grant.
func TestAClusterIssuerServesHydraTokensToSeveralNamespaces(t *testing.T) {
	ctx := context.Background()
	id := hydra.ClientID("issuer")
	const secret = "issuer-secret-value"
	if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read", "write"}}); err != nil {
		t.Fatal(err)
	}
	clientSecretCredential(t, testenv.OperatorNamespace, id+"-cred", secret)
	ci := &v1.ClusterTokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: id},
		Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			IssuerURL: srv.IssuerURL(), ClientID: id, AllowedScopes: []string{"re*"},
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: id + "-cred"}},
		}},
	}
	k8s.MustCreate(t, ci)
	t.Cleanup(func() { _ = k8s.Delete(ctx, ci) })

	a, b := k8s.NewNamespace(t), k8s.NewNamespace(t)
	for _, ns := range []string{a, b} {
		createTokenRequest(t, issuerRequest(ns, "reader", id, "read"))
	}
	createTokenRequest(t, issuerRequest(a, "writer", id, "write"))

	k8s.WaitReady(t, a, "reader")
	k8s.WaitReady(t, b, "reader")
	ta, tb := k8s.GetSecret(t, a, "reader"), k8s.GetSecret(t, b, "reader")
	token := string(ta.Data[v1.KeyAccessToken])
	if token != string(tb.Data[v1.KeyAccessToken]) {
		t.Errorf("two namespaces on one issuer and scope got different tokens")
	}
	assertActiveFor(t, token, id)
	k8s.WaitReason(t, a, "writer", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonScopeNotAllowed)
	if s := k8s.FindSecret(t, a, "writer"); s != nil {
		t.Errorf("a refused scope got a Secret")
	}
}

func issuerRequest(ns, name, issuer, scope string) *v1.TokenRequest {
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenRequestSpec{
			IssuerRef: &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: issuer},
			Scopes:    []string{scope},
		},
	}
}
