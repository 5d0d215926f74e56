package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

var k8s client.Client

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func validRequest(name string) *v1.TokenRequest {
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.TokenRequestSpec{
			Authority:  "https://login.microsoftonline.com/contoso.onmicrosoft.com",
			ClientID:   "00001111-aaaa-2222-bbbb-3333cccc4444",
			Scopes:     []string{"https://graph.microsoft.com/.default"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "app-cred"}},
		},
	}
}

func int32p(v int32) *int32 { return &v }

func TestValidObjectsAreAccepted(t *testing.T) {
	cases := map[string]func(*v1.TokenRequest){
		"an Entra authority with a client secret": func(*v1.TokenRequest) {},
		"an OIDC issuer with a certificate": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.IssuerURL, tr.Spec.Scopes = "", "https://idp.example.com/realms/x", nil
			tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: "app-cert", SendX5C: true, SigningAlgorithm: "ES256"}}
		},
		"a token URL with a service account and extra parameters": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL = "", "https://idp.example.com/oauth2/token"
			tr.Spec.ExtraParameters = map[string]string{"audience": "https://api.example.com"}
			tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "app-sa"}}
		},
		"an issuerRef with scopes and a template": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef = &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: "corp"}
			tr.Spec.SecretTemplate = &v1.SecretTemplate{Data: map[string]string{"auth": "Bearer {{ .AccessToken }}"}}
		},
		"a token exchange at a token URL": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
		},
		"a token exchange of another TokenRequest's token": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.SubjectToken = v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: "login"}}
		},
		"a token exchange with an actor": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.ActorToken = &v1.ExchangeActor{ServiceAccount: &v1.ServiceAccountCredential{Name: "agent", Audience: "sts"}}
			tr.Spec.TokenExchange.ActorTokenType = "urn:ietf:params:oauth:token-type:jwt"
		},
		"a token exchange without client authentication": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange, tr.Spec.Credential = "", "https://idp.example.com/oauth2/token", exchange(), nil
			tr.Spec.TokenExchange.ClientAuthentication = v1.ExchangeClientAuthNone
		},
		"an issuerRef choosing its exchange's audience and resources": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef = &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: "corp"}
			tr.Spec.Exchange = &v1.ExchangeTarget{Audience: "billing-api", Resource: []string{"https://billing.example.com/"}}
		},
		"an issuerRef choosing its exchange's audience only": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef, tr.Spec.Exchange = &v1.IssuerReference{Name: "team"}, &v1.ExchangeTarget{Audience: "billing-api"}
		},
		"an AWS role with a service account": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Scopes, tr.Spec.AWS = "", "", nil, awsTarget()
			tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "app-sa", Audience: "sts.amazonaws.com"}}
		},
		"a Google provider with scopes": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Google = "", "", googleTarget()
			tr.Spec.Scopes = []string{"https://www.googleapis.com/auth/devstorage.read_only"}
			tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "app-sa"}}
		},
		"plain http to 127.0.0.1": func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL = "", "http://127.0.0.1:8080/token"
		},
		"plain http to localhost": func(tr *v1.TokenRequest) { tr.Spec.Authority, tr.Spec.IssuerURL = "", "http://localhost:4444/" },
		"plain http to [::1]":     func(tr *v1.TokenRequest) { tr.Spec.Authority, tr.Spec.TokenURL = "", "http://[::1]:4444/oauth2/token" },
		"renewBefore alone":       func(tr *v1.TokenRequest) { tr.Spec.RenewBefore = &metav1.Duration{Duration: 15 * time.Minute} },
		"renewBeforePercentage alone": func(tr *v1.TokenRequest) {
			tr.Spec.RenewBeforePercentage = int32p(50)
		},
		"a dotted secret name, a template, a restart target and Retain": func(tr *v1.TokenRequest) {
			tr.Spec.SecretName = "graph.token-1"
			tr.Spec.SecretTemplate = &v1.SecretTemplate{Type: "Opaque", Data: map[string]string{"header": "Bearer {{ .AccessToken }}"}}
			tr.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{{Kind: "Deployment", Name: "api"}}
			tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
		},
		"a PKCS#12 certificate with a password": func(tr *v1.TokenRequest) {
			tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: "app-p12", PKCS12Key: "bundle.p12", PasswordKey: "password"}}
		},
	}
	i := 0
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			i++
			tr := validRequest(fmt.Sprintf("valid-%d-%d", i, time.Now().UnixNano()))
			mutate(tr)
			if err := k8s.Create(context.Background(), tr); err != nil {
				t.Fatalf("valid TokenRequest refused: %v", err)
			}
			got := &v1.TokenRequest{}
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(tr), got); err != nil {
				t.Fatal(err)
			}
			if got.Spec.SecretName != tr.Spec.SecretName || got.Spec.DeletionPolicy != tr.Spec.DeletionPolicy {
				t.Errorf("the API server changed the spec (defaults written back): %+v", got.Spec)
			}
		})
	}
}

func TestInvalidObjectsAreRefusedWithTheirMessage(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*v1.TokenRequest)
		message string
	}{
		{"no issuer at all", func(tr *v1.TokenRequest) { tr.Spec.Authority = "" }, "exactly one token issuer"},
		{"two issuers", func(tr *v1.TokenRequest) { tr.Spec.TokenURL = "https://idp.example.com/token" }, "exactly one token issuer"},
		{"three issuers", func(tr *v1.TokenRequest) {
			tr.Spec.TokenURL, tr.Spec.IssuerURL = "https://idp.example.com/token", "https://idp.example.com"
		}, "exactly one token issuer"},
		{"no credential", func(tr *v1.TokenRequest) { tr.Spec.Credential = &v1.Credential{} }, "set exactly one credential"},
		{"two credentials", func(tr *v1.TokenRequest) {
			tr.Spec.Credential.ServiceAccount = &v1.ServiceAccountCredential{Name: "sa"}
		}, "set exactly one credential"},
		{"plain http authority on a remote host", func(tr *v1.TokenRequest) {
			tr.Spec.Authority = "http://login.microsoftonline.com/tenant"
		}, "authority must be an https URL"},
		{"plain http issuer on a remote host", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.IssuerURL = "", "http://idp.example.com"
		}, "issuerURL must be an https URL"},
		{"a token URL that is no URL", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL = "", "idp.example.com/token"
		}, "tokenURL must be an https URL"},
		{"http to a host named like localhost", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL = "", "http://localhost.example.com/token"
		}, "tokenURL must be an https URL"},
		{"an ftp token URL", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL = "", "ftp://127.0.0.1/token"
		}, "tokenURL must be an https URL"},
		{"no client ID", func(tr *v1.TokenRequest) { tr.Spec.ClientID = "" }, "clientID and credential are required unless issuerRef"},
		{"no credential object", func(tr *v1.TokenRequest) { tr.Spec.Credential = nil }, "clientID and credential are required unless issuerRef"},
		{"AWS with scopes", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.AWS = "", "", awsTarget()
			tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "app-sa"}}
		}, "aws takes no scopes"},
		{"Google with a client secret", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Google = "", "", googleTarget()
		}, "aws and google take a serviceAccount credential"},
		{"AWS without credential", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Scopes, tr.Spec.Credential, tr.Spec.AWS = "", "", nil, nil, awsTarget()
		}, "aws and google take a serviceAccount credential"},
		{"AWS with an issuerRef", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef, tr.Spec.AWS = &v1.IssuerReference{Name: "team"}, awsTarget()
		}, "with issuerRef, leave out"},
		{"Google with a token exchange", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Google, tr.Spec.TokenExchange = "", "", googleTarget(), exchange()
			tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "app-sa"}}
		}, "with aws or google, leave out clientID, extraParameters and tokenExchange"},
		{"a token exchange with an issuerRef", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef, tr.Spec.TokenExchange = &v1.IssuerReference{Name: "team"}, exchange()
		}, "with issuerRef, leave out tokenExchange"},
		{"an exchange audience without an issuerRef", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.Exchange = &v1.ExchangeTarget{Audience: "billing-api"}
		}, "exchange applies only with issuerRef"},
		{"an empty exchange choice", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef, tr.Spec.Exchange = &v1.IssuerReference{Name: "team"}, &v1.ExchangeTarget{}
		}, "set audience, resource or both"},
		{"a relative exchange resource", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef, tr.Spec.Exchange = &v1.IssuerReference{Name: "team"}, &v1.ExchangeTarget{Resource: []string{"billing"}}
		}, "each resource must be an absolute URI"},
		{"a TokenRequest's own allowed audiences", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.AllowedAudiences = []string{"*"}
		}, "tokenExchange.allowedAudiences and allowedResources apply only on an issuer"},
		{"a TokenRequest's own allowed resources", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.AllowedResources = []string{"https://*"}
		}, "tokenExchange.allowedAudiences and allowedResources apply only on an issuer"},
		{"a token exchange without client authentication but with a credential", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.ClientAuthentication = v1.ExchangeClientAuthNone
		}, "with tokenExchange.clientAuthentication None, leave out credential"},
		{"a token exchange authenticating without a credential", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange, tr.Spec.Credential = "", "https://idp.example.com/oauth2/token", exchange(), nil
		}, "clientID and credential are required unless issuerRef"},
		{"an actor token type that is no URI", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.ActorToken = &v1.ExchangeActor{ServiceAccount: &v1.ServiceAccountCredential{Name: "agent", Audience: "sts"}}
			tr.Spec.TokenExchange.ActorTokenType = "jwt"
		}, "actorTokenType must be a token type URI"},
		{"a token exchange with two subjects", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.TokenExchange = "", "https://idp.example.com/oauth2/token", exchange()
			tr.Spec.TokenExchange.SubjectToken.TokenRequestRef = &v1.LocalTokenRequestReference{Name: "login"}
		}, "set exactly one subject token: serviceAccount or tokenRequestRef"},
		{"a token exchange with authority", func(tr *v1.TokenRequest) { tr.Spec.TokenExchange = exchange() },
			"tokenExchange applies only with issuerURL or tokenURL"},
		{"an issuerRef with an inline authority", func(tr *v1.TokenRequest) {
			tr.Spec.ClientID, tr.Spec.Credential = "", nil
			tr.Spec.IssuerRef = &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: "corp"}
		}, "with issuerRef, leave out authority"},
		{"an issuerRef with a credential", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID = "", ""
			tr.Spec.IssuerRef = &v1.IssuerReference{Name: "team"}
		}, "with issuerRef, leave out authority"},
		{"an issuerRef with extra parameters", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.ExtraParameters = map[string]string{"audience": "x"}
			tr.Spec.IssuerRef = &v1.IssuerReference{Name: "team"}
		}, "with issuerRef, leave out authority"},
		{"an issuerRef of an unknown kind", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.ClientID, tr.Spec.Credential = "", "", nil
			tr.Spec.IssuerRef = &v1.IssuerReference{Kind: "Issuer", Name: "team"}
		}, "spec.issuerRef.kind"},
		{"authority without scopes", func(tr *v1.TokenRequest) { tr.Spec.Scopes = nil }, "scopes are required with authority"},
		{"both renewBefore and renewBeforePercentage", func(tr *v1.TokenRequest) {
			tr.Spec.RenewBefore = &metav1.Duration{Duration: time.Minute}
			tr.Spec.RenewBeforePercentage = int32p(20)
		}, "set renewBefore or renewBeforePercentage, not both"},
		{"renewBeforePercentage of 0", func(tr *v1.TokenRequest) { tr.Spec.RenewBeforePercentage = int32p(0) }, "spec.renewBeforePercentage"},
		{"renewBeforePercentage of 91", func(tr *v1.TokenRequest) { tr.Spec.RenewBeforePercentage = int32p(91) }, "spec.renewBeforePercentage"},
		{"a negative renewBefore", func(tr *v1.TokenRequest) {
			tr.Spec.RenewBefore = &metav1.Duration{Duration: -time.Minute}
		}, "renewBefore must be a positive duration"},
		{"an upper-case secret name", func(tr *v1.TokenRequest) { tr.Spec.SecretName = "Graph-Token" }, "secretName must be a valid Secret name"},
		{"a secret name ending in a dash", func(tr *v1.TokenRequest) { tr.Spec.SecretName = "graph-" }, "secretName must be a valid Secret name"},
		{"extra parameters that replace the grant", func(tr *v1.TokenRequest) {
			tr.Spec.ExtraParameters = map[string]string{"grant_type": "password"}
		}, "extraParameters cannot set grant_type"},
		{"azureRegion with a generic issuer", func(tr *v1.TokenRequest) {
			tr.Spec.Authority, tr.Spec.TokenURL, tr.Spec.AzureRegion = "", "https://idp.example.com/token", "westus2"
		}, "azureRegion applies only with authority"},
		{"a PKCS#12 key together with a PEM key", func(tr *v1.TokenRequest) {
			tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: "c", PKCS12Key: "b.p12", PrivateKeyKey: "k"}}
		}, "set pkcs12Key, or certificateKey and privateKeyKey, not both"},
		{"a password without PKCS#12", func(tr *v1.TokenRequest) {
			tr.Spec.Credential = &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: "c", PasswordKey: "p"}}
		}, "passwordKey applies only with pkcs12Key"},
		{"an unknown client auth method", func(tr *v1.TokenRequest) {
			tr.Spec.Credential.ClientSecret.AuthMethod = "private_key_jwt"
		}, "spec.credential.clientSecret.authMethod"},
		{"an unknown deletion policy", func(tr *v1.TokenRequest) { tr.Spec.DeletionPolicy = "Orphan" }, "spec.deletionPolicy"},
		{"a restart target of an unknown kind", func(tr *v1.TokenRequest) {
			tr.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{{Kind: "Pod", Name: "x"}}
		}, "spec.rolloutRestartTargets[0].kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := validRequest("invalid")
			tc.mutate(tr)
			err := k8s.Create(context.Background(), tr, client.DryRunAll)
			if err == nil {
				t.Fatalf("invalid TokenRequest accepted")
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not contain %q", err, tc.message)
			}
		})
	}
}
