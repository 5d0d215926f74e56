package tokenrequest_test

import (
	"crypto"
	"crypto/x509"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// keysUsed collects the PEM of every private key handed to the operator.
var keysUsed []string

func selfSigned(t *testing.T, key crypto.Signer) (*x509.Certificate, []byte, []byte) {
	t.Helper()
	cert := testcert.SelfSigned(t, key, "token-operator test")
	keyPEM := testcert.PKCS8PEM(t, key)
	keysUsed = append(keysUsed, string(keyPEM))
	return cert, testcert.CertPEM(cert), keyPEM
}

func tlsSecret(t *testing.T, ns, name string, certPEM, keyPEM []byte) {
	t.Helper()
	k8s.MustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	})
}

func TestCertificateCredentialsGetTokens(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	rsaCert, rsaCertPEM, rsaKeyPEM := selfSigned(t, testcert.RSA(t, 2048))
	ecCert, ecCertPEM, ecKeyPEM := selfSigned(t, testcert.EC(t))
	tlsSecret(t, ns, "rsa", rsaCertPEM, rsaKeyPEM)
	tlsSecret(t, ns, "ec", ecCertPEM, ecKeyPEM)

	cases := []struct {
		name   string
		secret string
		cert   *x509.Certificate
		mutate func(*v1.TokenRequest)
		ready  bool
		reason string
	}{
		{name: "entra-rsa", secret: "rsa", cert: rsaCert, ready: true},
		{name: "entra-rsa-x5c", secret: "rsa", cert: rsaCert, ready: true, mutate: func(tr *v1.TokenRequest) {
			tr.Spec.Credential.Certificate.SendX5C = true
		}},
		{name: "entra-ec", secret: "ec", cert: ecCert, ready: false, reason: v1.ReasonInvalidCredential},
		{name: "generic-es256", secret: "ec", cert: ecCert, ready: true, mutate: func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL = "", sts.TokenURL("contoso")
			tr.Spec.Credential.Certificate.SigningAlgorithm = "ES256"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clientID := newClientID()
			sts.AddApp(entraserver.App{ClientID: clientID, Certificates: []*x509.Certificate{tc.cert}, ExpiresIn: 3600})
			tr := entraRequest(ns, tc.name, clientID, "")
			tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: tc.secret}}
			if tc.mutate != nil {
				tc.mutate(tr)
			}
			k8s.MustCreate(t, tr)
			if tc.ready {
				k8s.WaitReady(t, ns, tc.name)
				if !issuedBySTS(string(k8s.GetSecret(t, ns, tc.name).Data[v1.KeyAccessToken])) {
					t.Fatal("no token from the service")
				}
				return
			}
			got := k8s.WaitReason(t, ns, tc.name, v1.ConditionReady, metav1.ConditionFalse, tc.reason)
			if msg := kube.Condition(got, v1.ConditionReady).Message; !contains(msg, "RSA") {
				t.Errorf("message does not say RSA is needed: %s", msg)
			}
			if n := sts.TokenCalls(clientID); n != 0 {
				t.Errorf("%d calls for a refused key", n)
			}
		})
	}
}
