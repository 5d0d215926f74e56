package resolve

import (
	"context"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
)

const (
	// defaultFederationAud is the audience of a ServiceAccount credential's
	// token unless it names one; never written back into the spec.
	defaultFederationAud = "api://AzureADTokenExchange"
	// serviceAccountTokenSeconds is the lifetime of exchanged service account
	// tokens: the shortest the API server issues.
	serviceAccountTokenSeconds = 600
)

// loadServiceAccount exchanges a token of the ServiceAccount. The
// ServiceAccount gives consent the way a Secret does, with the
// allowed-issuers annotation, because its token proves the workload's identity.
func (r *Resolver) loadServiceAccount(ctx context.Context, ns string, ref *v1.ServiceAccountCredential) (credential.Credential, []string, error) {
	sa, err := r.serviceAccountMeta(ctx, ns, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("ServiceAccount %q not found in namespace %q", ref.Name, ns)}
	}
	if apierrors.IsForbidden(err) {
		return nil, nil, Forbidden(fmt.Sprintf("reading ServiceAccount %q (serviceaccounts get)", ref.Name), ns)
	}
	if err != nil {
		return nil, nil, err
	}
	audience := orDefault(ref.Audience, defaultFederationAud)
	if why := r.Audiences.refusal(ctx, audience); why != "" {
		return nil, nil, audienceError(ref, why)
	}
	mint := r.minter(sa, ref.Name, audience)
	provide := func(ctx context.Context) (string, error) {
		token, _, err := mint(ctx)
		return token, err
	}
	id := strings.Join([]string{ns, ref.Name, string(sa.UID), audience}, "/")
	return &credential.Assertion{ID: id, Provide: provide}, allowedHosts(sa.Annotations), nil
}

// minter mints tokens of a ServiceAccount for one audience, with their expiry.
func (r *Resolver) minter(sa *metav1.PartialObjectMetadata, name, audience string) func(context.Context) (string, time.Time, error) {
	return func(ctx context.Context) (string, time.Time, error) {
		expiry := int64(serviceAccountTokenSeconds)
		treq := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &expiry}}
		account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.Namespace, Name: sa.Name}}
		if err := r.Minter.SubResource("token").Create(ctx, account, treq); err != nil {
			if apierrors.IsForbidden(err) {
				return "", time.Time{}, Forbidden(fmt.Sprintf("a token for ServiceAccount %q (serviceaccounts/token create)", name), sa.Namespace)
			}
			return "", time.Time{}, fmt.Errorf("creating a token for ServiceAccount %q: %w", name, err)
		}
		return treq.Status.Token, treq.Status.ExpirationTimestamp.Time, nil
	}
}

// serviceAccountMeta reads a ServiceAccount's metadata from the watch
// cache, and directly when the cache has not seen it yet.
func (r *Resolver) serviceAccountMeta(ctx context.Context, ns, name string) (*metav1.PartialObjectMetadata, error) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	m := metadataOf("ServiceAccount")
	if err := r.Cached.Get(ctx, key, m); err == nil {
		return m, nil
	}
	sa := &corev1.ServiceAccount{}
	if err := r.Direct.Get(ctx, key, sa); err != nil {
		return nil, err
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: sa.ObjectMeta}, nil
}

// checkServiceAccountReservation applies the reservation of a
// ServiceAccount used as a federation credential. A missing account is
// reported by loadServiceAccount.
func (r *Resolver) checkServiceAccountReservation(ctx context.Context, from Source, name string) error {
	sa, err := r.serviceAccountMeta(ctx, from.credentialNamespace, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return reservationOf(sa.Annotations).check(from, credentialSource{"ServiceAccount", name})
}
