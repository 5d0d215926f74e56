package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/zitadelop"
)

// RFC 8693 token exchange against zitadel/oidc's op: the server trusts the
// API server's service account issuer (its own discovery document and
// keys) for subject tokens of one audience.

const (
	zExchanger       = "z-exchanger"
	zSubjectAudience = "zitadelop-exchange"
)

// apiServerSubjectIssuer reads the API server's service account issuer
// and keys, as an RFC 8693 server set up for Kubernetes subjects would.
func apiServerSubjectIssuer(ctx context.Context, cfg *rest.Config) ([]zitadelop.SubjectIssuer, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	get := func(path string, into any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Host, "/")+path, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return json.Unmarshal(b, into)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	var keys jose.JSONWebKeySet
	if err := get("/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	if err := get("/openid/v1/jwks", &keys); err != nil {
		return nil, err
	}
	return []zitadelop.SubjectIssuer{{Issuer: doc.Issuer, Audience: zSubjectAudience, Keys: keys.Keys}}, nil
}

// exchangeRequest asks for a token in exchange for ServiceAccount sa's
// token of audience aud; the client and the ServiceAccount consent to the
// server as given.
func exchangeRequest(t *testing.T, ns, name, sa, aud string, saConsents bool) {
	t.Helper()
	zCredential(t, ns, name+"-cred", zExchanger, zRightSecret)
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}
	if saConsents {
		account.Annotations = map[string]string{v1.AnnotationAllowedIssuers: zHost}
	}
	k8s.MustCreate(t, account)
	zCreateTokenRequest(t, &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenRequestSpec{TokenURL: zsrv.TokenURL(), ClientID: zExchanger, Scopes: []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred"}},
			TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{
				ServiceAccount: &v1.ServiceAccountCredential{Name: sa, Audience: aud}}}},
	})
}

func TestAServiceAccountTokenIsExchangedWithZitadelOP(t *testing.T) {
	ns := k8s.NewNamespace(t)
	start := time.Now()
	exchangeRequest(t, ns, "exchanged", "worker", zSubjectAudience, true)

	tr := k8s.WaitReady(t, ns, "exchanged")
	if c := kube.Condition(tr, v1.ConditionReady); c.Reason != v1.ReasonIssued {
		t.Errorf("Ready reason %q, want %q", c.Reason, v1.ReasonIssued)
	}
	s := k8s.GetSecret(t, ns, "exchanged")
	claims, err := zsrv.VerifyAccessToken(context.Background(), string(s.Data[v1.KeyAccessToken]))
	if err != nil {
		t.Fatalf("the Secret's access token does not verify with the server's JWKS: %v", err)
	}
	// The server names the subject token's subject: the exchange happened.
	if want := "system:serviceaccount:" + ns + ":worker"; claims.Subject != want || claims.ClientID != zExchanger {
		t.Errorf("token for sub %q client_id %q, want %q and %s", claims.Subject, claims.ClientID, want, zExchanger)
	}
	// The server's token lives an hour, the subject token ten minutes: the
	// written expiry, from which refresh is planned, is the subject's.
	expires, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
	if err != nil {
		t.Fatalf("expires_at: %v", err)
	}
	if !claims.Expiry.Time().After(start.Add(30 * time.Minute)) {
		t.Fatalf("the server's token expires at %s; the test needs one that outlives the subject", claims.Expiry.Time())
	}
	if expires.After(time.Now().Add(10*time.Minute+time.Second)) || expires.Before(start.Add(9*time.Minute)) {
		t.Errorf("expires_at %s, want the subject token's expiry, about ten minutes after %s", expires, start)
	}
}

func TestZitadelOPRefusesASubjectTokenForAnotherAudience(t *testing.T) {
	ns := k8s.NewNamespace(t)
	exchangeRequest(t, ns, "wrong-audience", "worker", "someone-else", true)

	tr := k8s.WaitReason(t, ns, "wrong-audience", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	if !strings.Contains(msg, "invalid_request") {
		t.Errorf("Stalled message lacks the server's error: %s", msg)
	}
	if strings.Contains(msg, zRightSecret) || strings.Contains(msg, "eyJ") {
		t.Errorf("Stalled message shows a secret or a token: %s", msg)
	}
	if s := k8s.FindSecret(t, ns, "wrong-audience"); s != nil {
		t.Error("a refused exchange got a Secret")
	}
}

func TestAServiceAccountThatDoesNotConsentIsNotExchanged(t *testing.T) {
	ns := k8s.NewNamespace(t)
	before := zsrv.TokenCalls()
	exchangeRequest(t, ns, "no-consent", "worker", zSubjectAudience, false)

	tr := k8s.WaitReason(t, ns, "no-consent", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	msg := kube.Condition(tr, v1.ConditionReady).Message
	if !strings.Contains(msg, `ServiceAccount "worker"`) || !strings.Contains(msg, zHost) {
		t.Errorf("Ready message does not say which ServiceAccount must consent to which host: %s", msg)
	}
	if zsrv.TokenCalls() != before {
		t.Errorf("the token service was called %d times", zsrv.TokenCalls()-before)
	}
}

func TestATokenIssuerExchangesItsServiceAccountsToken(t *testing.T) {
	ns := k8s.NewNamespace(t)
	zCredential(t, ns, "issuer-cred", zExchanger, zRightSecret)
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reporting", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: zHost}}})
	k8s.MustCreate(t, &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "exchange", Namespace: ns},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{IssuerURL: zsrv.IssuerURL(), ClientID: zExchanger, AllowedScopes: []string{"read"},
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "issuer-cred"}},
			TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{
				ServiceAccount: &v1.ServiceAccountCredential{Name: "reporting", Audience: zSubjectAudience}}}}}})
	zCreateTokenRequest(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "via-issuer", Namespace: ns},
		Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "exchange"}, Scopes: []string{"read"}}})

	k8s.WaitReady(t, ns, "via-issuer")
	claims, err := zsrv.VerifyAccessToken(context.Background(), string(k8s.GetSecret(t, ns, "via-issuer").Data[v1.KeyAccessToken]))
	if err != nil {
		t.Fatalf("the Secret's access token does not verify with the server's JWKS: %v", err)
	}
	if want := "system:serviceaccount:" + ns + ":reporting"; claims.Subject != want {
		t.Errorf("token for sub %q, want the issuer's subject %q", claims.Subject, want)
	}
}

func TestConsentGivenLaterIsSeenPromptly(t *testing.T) {
	ns := k8s.NewNamespace(t)
	exchangeRequest(t, ns, "later", "worker", zSubjectAudience, false)
	k8s.WaitReason(t, ns, "later", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)

	sa := &corev1.ServiceAccount{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "worker"}, sa); err != nil {
		t.Fatal(err)
	}
	sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: zHost}
	if err := k8s.Update(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	// The subject ServiceAccount is watched like a credential: no resync wait.
	k8s.WaitReady(t, ns, "later")
}
