package resolve

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Reader reads one object by key: a controller-runtime client.Reader or
// cache satisfies it, and so does a fake in a test.
type Reader interface {
	Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error
}

// TokenCreator mints ServiceAccount tokens (serviceaccounts/token create);
// a controller-runtime client.Client satisfies it.
type TokenCreator interface {
	SubResource(subResource string) client.SubResourceClient
}

// Policy refuses, before any call, what the operator's own policy forbids:
// plain-http endpoints, issuer hosts outside its ceiling.
type Policy interface {
	Validate(req tokensource.Request) error
}

// Resolver turns a TokenRequest into the token request to make, or a
// *Refusal saying why there is none. It reads issuers, credentials,
// ServiceAccounts and namespaces, and calls nothing else.
type Resolver struct {
	// Cached reads issuers and ServiceAccount metadata from the manager's cache.
	Cached Reader
	// Direct reads credential Secrets (and ServiceAccounts the cache has
	// not seen yet) from the API server, so their data is never cached.
	Direct Reader
	// Metadata reads Secret and Namespace metadata from the metadata cache;
	// without it every credential is read directly.
	Metadata Reader
	// Minter mints the tokens of ServiceAccount credentials.
	Minter TokenCreator
	// Policy is the token engine's own policy.
	Policy Policy
	// ClusterResourceNamespace holds the credentials of ClusterTokenIssuers.
	ClusterResourceNamespace string
	// Audiences decides the audiences of minted service-account tokens (nil: refuse only the usual API server forms).
	Audiences *ServiceAccountAudiences
	// NoServiceAccountCredentials refuses ServiceAccount credentials
	// (--enable-service-account-credentials=false).
	NoServiceAccountCredentials bool

	// credentials holds parsed credentials by Secret version.
	credentials parsedCredentials
}

// Resolution is what a TokenRequest's token comes from.
type Resolution struct {
	// Request is the token request to make.
	Request tokensource.Request
	// Version identifies the credential's source and version, never its material.
	Version string
	// Identity is Version without the version of an issuer's credential, so
	// that rotating it reaches its TokenRequests at their next refresh.
	Identity string
	// Source is the spec or the issuer the token comes from; set as far as
	// it was found, also with a refusal.
	Source Source
	// ClientID is the client the token is for (the issuer's with issuerRef).
	ClientID string
}

// Resolve finds tr's issuer, checks that tr may use it and its credential,
// and builds the token request. A refusal is a *Refusal; any other error
// is the API server's, to retry.
func (r *Resolver) Resolve(ctx context.Context, tr *v1.TokenRequest) (Resolution, error) {
	from, err := r.resolve(ctx, tr)
	res := Resolution{Source: from}
	if err != nil {
		return res, err
	}
	res.ClientID = from.spec.ClientID
	res.Request, res.Version, res.Identity, err = r.buildRequest(ctx, from, tr.Spec.Scopes)
	return res, err
}

// CheckIssuer checks a TokenIssuer's or ClusterTokenIssuer's configuration
// and credential on their own, without a TokenRequest's scopes and
// without asking for a token.
func (r *Resolver) CheckIssuer(ctx context.Context, issuer client.Object) error {
	var from Source
	switch i := issuer.(type) {
	case *v1.ClusterTokenIssuer:
		if sel := i.Spec.AllowedNamespaces; sel != nil && sel.Selector != nil {
			if _, err := metav1.LabelSelectorAsSelector(sel.Selector); err != nil {
				return &Refusal{Reason: v1.ReasonInvalidSpec, Message: "allowedNamespaces.selector: " + err.Error()}
			}
		}
		from = Source{spec: i.Spec.IssuerSpec, credential: &i.Spec.Credential, credentialNamespace: r.ClusterResourceNamespace,
			ref: v1.KindClusterTokenIssuer + "/" + i.Name}
	case *v1.TokenIssuer:
		from = Source{spec: i.Spec.IssuerSpec, credential: &i.Spec.Credential, credentialNamespace: i.Namespace,
			ref: v1.KindTokenIssuer + "/" + i.Name}
	default:
		return fmt.Errorf("%T is no issuer", issuer)
	}
	from.scopesLater = true
	_, _, _, err := r.buildRequest(ctx, from, nil)
	return err
}

func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}
