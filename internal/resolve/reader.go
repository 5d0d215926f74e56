package resolve

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	// Clock tells a token exchange's subject token that has expired; nil:
	// the real clock.
	Clock clock.PassiveClock

	// credentials holds parsed credentials by Secret version.
	credentials parsedCredentials
}

func (r *Resolver) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}
