package tokenrequest_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// An app that trusts a CA and a subject name (subject name and issuer
// authentication) gets tokens only when the operator sends the whole chain,
// leaf and intermediate, in x5c.
func TestSubjectNameAndIssuerNeedsTheWholeChainInX5C(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	root, err := testcert.NewCA("token-operator test root CA")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("token-operator test issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	key := testcert.RSA(t, 2048)
	leaf, err := inter.Client(key, "sni.token-operator.example")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := testcert.PKCS8PEM(t, key)
	keysUsed = append(keysUsed, string(keyPEM))
	tlsSecret(t, ns, "chain", testcert.CertPEM(leaf, inter.Cert), keyPEM)
	tlsSecret(t, ns, "leaf-only", testcert.CertPEM(leaf), keyPEM)

	cases := []struct {
		name, secret   string
		sendX5C, ready bool
		generic        bool // through the token URL, without MSAL
	}{
		{"whole-chain", "chain", true, true, false},
		{"no-x5c", "chain", false, false, false},
		{"no-intermediate", "leaf-only", true, false, false},
		{"generic-whole-chain", "chain", true, true, true},
		{"generic-no-intermediate", "leaf-only", true, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clientID := newClientID()
			sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600,
				TrustedSubjects: []entraserver.TrustedSubject{{CA: root.Cert, Subject: "CN=sni.token-operator.example"}}})
			tr := entraRequest(ns, tc.name, clientID, "")
			tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: tc.secret, SendX5C: tc.sendX5C}}
			if tc.generic {
				tr.Spec.Authority, tr.Spec.TokenURL = "", sts.TokenURL("contoso")
			}
			k8s.MustCreate(t, tr)
			if tc.ready {
				k8s.WaitReady(t, ns, tc.name)
				if !issuedBySTS(string(k8s.GetSecret(t, ns, tc.name).Data[v1.KeyAccessToken])) {
					t.Fatal("no token from the service")
				}
				if a, _ := sts.LastAssertion(clientID); !a.X5C {
					t.Error("the assertion carried no x5c")
				}
				return
			}
			got := k8s.WaitReason(t, ns, tc.name, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonTokenServiceRejected)
			if msg := kube.Condition(got, v1.ConditionReady).Message; !contains(msg, "AADSTS700027") {
				t.Errorf("message does not carry the service's refusal: %s", msg)
			}
		})
	}
}
