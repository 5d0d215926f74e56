package interop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

func TestEachClientAuthenticationGetsAnActiveTokenFromHydra(t *testing.T) {
	// Hydra URL-decodes Basic credentials (RFC 6749 §2.3.1): this secret
	// only works when the operator form-url-encodes it first.
	const oddSecret = "100% real+secret: with spaces"
	cases := []struct {
		name string
		// prepare creates the credential Secret name+"-cred" in ns, and
		// returns Hydra's registration and the spec's credential.
		prepare func(t *testing.T, ns, name, id string) (hydra.Client, *v1.Credential)
	}{
		{
			name: "client_secret_basic with a secret holding %, +, : and spaces",
			prepare: func(t *testing.T, ns, name, id string) (hydra.Client, *v1.Credential) {
				clientSecretCredential(t, ns, name+"-cred", oddSecret)
				return hydra.Client{ID: id, Secret: oddSecret, AuthMethod: "client_secret_basic", Scopes: []string{"read", "write"}},
					&v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred"}}
			},
		},
		{
			name: "client_secret_post",
			prepare: func(t *testing.T, ns, name, id string) (hydra.Client, *v1.Credential) {
				clientSecretCredential(t, ns, name+"-cred", oddSecret)
				return hydra.Client{ID: id, Secret: oddSecret, AuthMethod: "client_secret_post", Scopes: []string{"read", "write"}},
					&v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred", AuthMethod: v1.ClientSecretPost}}
			},
		},
		{
			name: "private_key_jwt with an RSA certificate signing RS256 by default",
			prepare: func(t *testing.T, ns, name, id string) (hydra.Client, *v1.Credential) {
				jwk := certificateCredential(t, ns, name+"-cred", testcert.RSA(t, 2048), "RS256")
				return hydra.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: "RS256", JWKS: []jose.JSONWebKey{jwk}, Scopes: []string{"read", "write"}},
					&v1.Credential{Certificate: &v1.CertificateCredential{SecretName: name + "-cred"}}
			},
		},
		{
			name: "private_key_jwt with a P-256 certificate signing ES256",
			prepare: func(t *testing.T, ns, name, id string) (hydra.Client, *v1.Credential) {
				jwk := certificateCredential(t, ns, name+"-cred", testcert.EC(t), "ES256")
				return hydra.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: "ES256", JWKS: []jose.JSONWebKey{jwk}, Scopes: []string{"read", "write"}},
					&v1.Credential{Certificate: &v1.CertificateCredential{SecretName: name + "-cred", SigningAlgorithm: "ES256"}}
			},
		},
		{
			// Hydra picks the client's key by kid: only the configured key ID finds it.
			name: "private_key_jwt with a key ID the server knows the key by",
			prepare: func(t *testing.T, ns, name, id string) (hydra.Client, *v1.Credential) {
				jwk := certificateCredential(t, ns, name+"-cred", testcert.RSA(t, 2048), "RS256")
				jwk.KeyID = "partner-key-" + id
				return hydra.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: "RS256", JWKS: []jose.JSONWebKey{jwk}, Scopes: []string{"read", "write"}},
					&v1.Credential{Certificate: &v1.CertificateCredential{SecretName: name + "-cred", KeyID: "partner-key-" + id}}
			},
		},
	}
	ns := k8s.NewNamespace(t)
	for _, tc := range cases {
		for _, ep := range endpoints() {
			t.Run(tc.name+" "+ep.name, func(t *testing.T) {
				t.Parallel()
				name := hydra.ClientID("auth")
				hc, cred := tc.prepare(t, ns, name, name)
				if err := srv.CreateClient(context.Background(), hc); err != nil {
					t.Fatal(err)
				}
				tr := tokenRequest(ns, name, hc.ID, []string{"read"}, ep)
				tr.Spec.Credential = cred
				createTokenRequest(t, tr)

				tr = k8s.WaitReady(t, ns, name)
				if c := kube.Condition(tr, v1.ConditionReady); c.Reason != v1.ReasonIssued {
					t.Errorf("Ready reason %q, want %q", c.Reason, v1.ReasonIssued)
				}
				if got := strings.Join(tr.Status.Scopes, " "); got != "read" {
					t.Errorf("granted scopes %q, want read", got)
				}
				if !strings.EqualFold(tr.Status.TokenType, "bearer") {
					t.Errorf("token type %q, want bearer", tr.Status.TokenType)
				}
				s := k8s.GetSecret(t, ns, name)
				assertActiveFor(t, string(s.Data[v1.KeyAccessToken]), hc.ID)
				expires, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
				if err != nil {
					t.Fatalf("expires_at: %v", err)
				}
				if left := time.Until(expires); left < 58*time.Minute || left > time.Hour {
					t.Errorf("token valid for another %v, want about Hydra's default of 1h", left)
				}
			})
		}
	}
}

func TestAShortLivedTokenIsReplacedBeforeItExpires(t *testing.T) {
	const lifespan = 15 * time.Second
	ns := k8s.NewNamespace(t)
	for _, ep := range endpoints() {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			id := hydra.ClientID("refresh")
			const secret = "refresh-secret-value"
			if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			if err := srv.SetAccessTokenLifespan(ctx, id, lifespan); err != nil {
				t.Fatal(err)
			}
			clientSecretCredential(t, ns, id+"-cred", secret)
			createTokenRequest(t, tokenRequest(ns, id, id, []string{"read"}, ep))

			k8s.WaitReady(t, ns, id)
			first := k8s.GetSecret(t, ns, id)
			oldToken := string(first.Data[v1.KeyAccessToken])
			assertActiveFor(t, oldToken, id)
			oldExpires, err := time.Parse(time.RFC3339, string(first.Data[v1.KeyExpiresAt]))
			if err != nil {
				t.Fatalf("expires_at: %v", err)
			}
			if left := time.Until(oldExpires); left > lifespan {
				t.Fatalf("token valid for another %v, longer than the client's lifespan of %v", left, lifespan)
			}

			var newToken string
			kube.Eventually(t, lifespan+5*time.Second, "a new token in the Secret", func() bool {
				newToken = string(k8s.GetSecret(t, ns, id).Data[v1.KeyAccessToken])
				return newToken != oldToken
			})
			if seen := time.Now(); !seen.Before(oldExpires) {
				t.Errorf("the new token arrived at %s, not before the old one expired at %s", seen.UTC().Format(time.RFC3339Nano), oldExpires.UTC().Format(time.RFC3339))
			}
			assertActiveFor(t, newToken, id)
			kube.Eventually(t, 5*time.Second, "Ready with the new token's expiry in status", func() bool {
				tr := k8s.GetTR(t, ns, id)
				c := kube.Condition(tr, v1.ConditionReady)
				return c != nil && c.Status == metav1.ConditionTrue && tr.Status.ExpiresAt != nil && tr.Status.ExpiresAt.After(oldExpires)
			})
		})
	}
}

func TestARevokedClientIsReportedWithoutHammeringHydra(t *testing.T) {
	// Short enough to watch the old token expire, long enough to force a
	// refresh well before the regular refresh time (about 10 s).
	const lifespan = 15 * time.Second
	ctx := context.Background()
	ns := k8s.NewNamespace(t)
	id := hydra.ClientID("revoked")
	const secret = "revoked-secret-value"
	if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetAccessTokenLifespan(ctx, id, lifespan); err != nil {
		t.Fatal(err)
	}
	clientSecretCredential(t, ns, id+"-cred", secret)
	createTokenRequest(t, tokenRequest(ns, id, id, []string{"read"}, endpoints()[0]))
	k8s.WaitReady(t, ns, id)
	good := k8s.GetSecret(t, ns, id)
	goodToken := string(good.Data[v1.KeyAccessToken])
	assertActiveFor(t, goodToken, id)
	expires, err := time.Parse(time.RFC3339, string(good.Data[v1.KeyExpiresAt]))
	if err != nil {
		t.Fatalf("expires_at: %v", err)
	}

	if err := srv.DeleteClient(ctx, id); err != nil {
		t.Fatal(err)
	}
	before := tokenCalls()
	tr := k8s.GetTR(t, ns, id)
	if tr.Annotations == nil {
		tr.Annotations = map[string]string{}
	}
	tr.Annotations[v1.AnnotationRefreshRequestedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	if err := k8s.Update(ctx, tr); err != nil {
		t.Fatal(err)
	}

	tr = k8s.WaitReason(t, ns, id, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	if msg := kube.Condition(tr, v1.ConditionStalled).Message; !strings.Contains(msg, "invalid_client") {
		t.Errorf("Stalled message lacks invalid_client: %s", msg)
	}
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionTrue {
		t.Errorf("Ready is %s while the old token is still valid", kube.Describe(c))
	}

	// Until the old token expires, and through the regular refresh time on
	// the way, Ready stays True, the failure stays reported, the Secret
	// keeps the good token, and Hydra hears nothing more.
	for time.Now().Before(expires.Add(-time.Second)) {
		tr = k8s.GetTR(t, ns, id)
		ready, stalled := kube.Condition(tr, v1.ConditionReady), kube.Condition(tr, v1.ConditionStalled)
		if ready.Status != metav1.ConditionTrue && time.Now().Before(expires.Add(-time.Second)) {
			t.Fatalf("%s before the old token expired at %s: Ready %s", time.Now().UTC().Format(time.RFC3339Nano), expires.Format(time.RFC3339), kube.Describe(ready))
		}
		if stalled.Status != metav1.ConditionTrue || stalled.Reason != v1.ReasonTokenServiceRejected {
			t.Fatalf("the failure is no longer reported: Stalled %s", kube.Describe(stalled))
		}
		if s := k8s.GetSecret(t, ns, id); string(s.Data[v1.KeyAccessToken]) != goodToken {
			t.Fatal("the last good token was replaced")
		}
		time.Sleep(200 * time.Millisecond)
	}

	tr = k8s.WaitReason(t, ns, id, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonExpired)
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !strings.Contains(msg, "invalid_client") {
		t.Errorf("Expired message lacks the cause: %s", msg)
	}
	// A later pass, seen through observedGeneration, does not retry either.
	if c := kube.Condition(k8s.SeeReconcile(t, ns, id), v1.ConditionReady); c.Reason != v1.ReasonExpired {
		t.Errorf("after a later pass Ready is %s", kube.Describe(c))
	}
	if n := tokenCalls() - before; n != 1 {
		t.Errorf("Hydra saw %d token requests since the forced refresh, want exactly 1 (the forced one, no retries)", n)
	}
}

func TestAnUnknownScopeIsRejected(t *testing.T) {
	ns := k8s.NewNamespace(t)
	for _, ep := range endpoints() {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			id := hydra.ClientID("scope")
			const secret = "scope-secret-value"
			if err := srv.CreateClient(context.Background(), hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			clientSecretCredential(t, ns, id+"-cred", secret)
			createTokenRequest(t, tokenRequest(ns, id, id, []string{"read", "admin"}, ep))

			tr := k8s.WaitReason(t, ns, id, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonTokenServiceRejected)
			if msg := kube.Condition(tr, v1.ConditionReady).Message; !strings.Contains(msg, "invalid_scope") {
				t.Errorf("Ready message lacks invalid_scope: %s", msg)
			}
			if c := kube.Condition(tr, v1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonTokenServiceRejected {
				t.Errorf("Stalled %s, want True %s", kube.Describe(c), v1.ReasonTokenServiceRejected)
			}
		})
	}
}
