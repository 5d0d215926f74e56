package tokenrequest_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// apiServerIssuer returns the API server's service account issuer and the key
// that verifies its tokens: what Entra would fetch through the issuer's OIDC
// discovery (which envtest's API server does not serve).
func apiServerIssuer(t *testing.T) (string, jose.JSONWebKeySet) {
	t.Helper()
	raw, err := os.ReadFile(env.ServiceAccountSigningCertFile())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("no PEM in the service account signing file")
	}
	var key any
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		key = cert.PublicKey
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		t.Fatal(err)
	}
	return issuerOfServiceAccountTokens(t), jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key}}}
}

// issuerOfServiceAccountTokens reads the iss claim of a freshly issued token.
func issuerOfServiceAccountTokens(t *testing.T) string {
	t.Helper()
	ns := k8s.NewNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}}
	k8s.MustCreate(t, sa)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"probe"}}}
	if err := k8s.SubResource("token").Create(context.Background(), sa, req); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(req.Status.Token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c.Issuer
}

func TestAServiceAccountTokenIsExchangedThroughFederation(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	issuer, keys := apiServerIssuer(t)
	clientID := newClientID()
	sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":workload", Audience: "api://AzureADTokenExchange", Keys: keys,
	}}})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns}}
	k8s.MustCreate(t, sa)
	tr := entraRequest(ns, "federated", clientID, "")
	tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}
	k8s.MustCreate(t, tr)

	// Without consent on the ServiceAccount nothing is sent.
	k8s.WaitReason(t, ns, "federated", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Fatalf("%d calls without consent", n)
	}
	sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}
	if err := k8s.Update(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	k8s.WaitReady(t, ns, "federated")
	if !issuedBySTS(string(k8s.GetSecret(t, ns, "federated").Data[v1.KeyAccessToken])) {
		t.Fatal("no token from the service")
	}
	if n := sts.FederatedTokenCalls(clientID); n != 1 {
		t.Errorf("federated token calls = %d, want 1", n)
	}
}

func TestAFederatedTokenForTheWrongSubjectIsRejected(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	issuer, keys := apiServerIssuer(t)
	clientID := newClientID()
	sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":someone-else", Audience: "api://AzureADTokenExchange", Keys: keys,
	}}})
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}}})
	tr := entraRequest(ns, "wrong-subject", clientID, "")
	tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}
	k8s.MustCreate(t, tr)
	got := k8s.WaitReason(t, ns, "wrong-subject", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonTokenServiceRejected)
	if msg := kube.Condition(got, v1.ConditionReady).Message; !contains(msg, "AADSTS700213") {
		t.Errorf("message lacks the federation error code: %s", msg)
	}
}
