package resolve

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// IssuerKind is the kind an IssuerReference names; TokenIssuer by default.
func IssuerKind(ref *v1.IssuerReference) string {
	if ref.Kind == v1.KindClusterTokenIssuer {
		return v1.KindClusterTokenIssuer
	}
	return v1.KindTokenIssuer
}

// resolve finds what tr's token comes from and whether tr may use it. A
// refusal is a *Refusal, found before any call to a token service.
func (r *Resolver) resolve(ctx context.Context, tr *v1.TokenRequest) (Source, error) {
	// Before any allowedScopes pattern sees them (objects stored before
	// the API refused such scopes).
	if err := tokensource.CheckScopes(tr.Spec.Scopes); err != nil {
		return Source{}, specError(err)
	}
	ref := tr.Spec.IssuerRef
	if ref == nil {
		s := tr.Spec
		from := Source{
			spec: v1.IssuerSpec{Authority: s.Authority, IssuerURL: s.IssuerURL, TokenURL: s.TokenURL, AzureRegion: s.AzureRegion,
				ClientID: s.ClientID, ExtraParameters: s.ExtraParameters, TokenExchange: s.TokenExchange,
				Google: s.Google, AWS: s.AWS},
			credential: s.Credential, credentialNamespace: tr.Namespace,
		}
		return from, nil
	}
	var from Source
	var err error
	if IssuerKind(ref) == v1.KindClusterTokenIssuer {
		from, err = r.clusterIssuer(ctx, tr, ref.Name)
	} else {
		from, err = r.namespacedIssuer(ctx, tr, ref.Name)
	}
	if err != nil {
		return from, err
	}
	if bad, ok := firstScopeNotAllowed(from.spec.AllowedScopes, tr.Spec.Scopes); !ok {
		msg := fmt.Sprintf("%s does not allow the scope %q", from.label, bad)
		if bad == "" {
			msg = fmt.Sprintf("%s allows only the scopes it lists; name one in spec.scopes", from.label)
		}
		return from, &Refusal{Reason: v1.ReasonScopeNotAllowed, Message: msg}
	}
	return withExchangeTarget(from, tr.Spec.Exchange)
}

// withExchangeTarget puts a TokenRequest's choice of audience and
// resources in its issuer's token exchange. Each is the issuer's own or
// matches its allowedAudiences / allowedResources, so a namespace cannot
// steer the issuer's subject to a target the issuer's owner did not allow.
func withExchangeTarget(from Source, t *v1.ExchangeTarget) (Source, error) {
	if t == nil {
		return from, nil
	}
	x := from.spec.TokenExchange
	if x == nil {
		return from, &Refusal{Reason: v1.ReasonInvalidSpec, Message: fmt.Sprintf("spec.exchange: %s does not use token exchange; leave spec.exchange out", from.label)}
	}
	if a := t.Audience; a != "" && a != x.Audience && !matchesAny(x.AllowedAudiences, a) {
		own := "it sends none"
		if x.Audience != "" {
			own = fmt.Sprintf("%q", x.Audience)
		}
		return from, &Refusal{Reason: v1.ReasonAudienceNotAllowed, Message: fmt.Sprintf(
			"%s does not allow the audience %q: name one its tokenExchange.allowedAudiences match, or leave spec.exchange.audience out for its own (%s)", from.label, a, own)}
	}
	for _, res := range t.Resource {
		if !slices.Contains(x.Resource, res) && !matchesAny(x.AllowedResources, res) {
			return from, &Refusal{Reason: v1.ReasonAudienceNotAllowed, Message: fmt.Sprintf(
				"%s does not allow the resource %q: name ones its tokenExchange.allowedResources match, or leave spec.exchange.resource out for its own", from.label, res)}
		}
	}
	x = x.DeepCopy()
	if t.Audience != "" {
		x.Audience = t.Audience
	}
	if len(t.Resource) > 0 {
		x.Resource = t.Resource
	}
	from.spec.TokenExchange = x
	return from, nil
}

func matchesAny(patterns []string, s string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return globMatch(p, s) })
}

func (r *Resolver) clusterIssuer(ctx context.Context, tr *v1.TokenRequest, name string) (Source, error) {
	label := fmt.Sprintf("ClusterTokenIssuer %q", name)
	ci := &v1.ClusterTokenIssuer{}
	if err := r.Cached.Get(ctx, types.NamespacedName{Name: name}, ci); err != nil {
		return Source{}, issuerGetError(err, label)
	}
	from := Source{
		spec: ci.Spec.IssuerSpec, credential: &ci.Spec.Credential, credentialNamespace: r.ClusterResourceNamespace,
		issuer: strings.Join([]string{v1.KindClusterTokenIssuer, name, string(ci.UID)}, "/"), label: label,
		ref: v1.KindClusterTokenIssuer + "/" + name,
	}
	allowed, err := r.namespaceAllowed(ctx, ci.Spec.AllowedNamespaces, tr.Namespace)
	if err != nil {
		return from, err
	}
	if !allowed {
		return from, &Refusal{Reason: v1.ReasonIssuerNotAllowed, Message: fmt.Sprintf("%s does not allow namespace %q", label, tr.Namespace)}
	}
	return from, nil
}

func (r *Resolver) namespacedIssuer(ctx context.Context, tr *v1.TokenRequest, name string) (Source, error) {
	label := fmt.Sprintf("TokenIssuer %q", name)
	ti := &v1.TokenIssuer{}
	if err := r.Cached.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: name}, ti); err != nil {
		return Source{}, issuerGetError(err, label+" in namespace "+tr.Namespace)
	}
	return Source{
		spec: ti.Spec.IssuerSpec, credential: &ti.Spec.Credential, credentialNamespace: ti.Namespace,
		issuer: strings.Join([]string{v1.KindTokenIssuer, ti.Namespace, name, string(ti.UID)}, "/"), label: label,
		ref: v1.KindTokenIssuer + "/" + name,
	}, nil
}

func issuerGetError(err error, label string) error {
	if apierrors.IsNotFound(err) {
		return &Refusal{Reason: v1.ReasonIssuerNotFound, Message: label + " not found"}
	}
	return err
}

// namespaceAllowed applies a ClusterTokenIssuer's allowedNamespaces; the
// namespace's labels come from the metadata cache.
func (r *Resolver) namespaceAllowed(ctx context.Context, allowed *v1.AllowedNamespaces, namespace string) (bool, error) {
	if allowed == nil {
		return true, nil
	}
	if slices.Contains(allowed.Names, namespace) {
		return true, nil
	}
	if allowed.Selector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(allowed.Selector)
	if err != nil {
		return false, &Refusal{Reason: v1.ReasonIssuerNotReady, Message: fmt.Sprintf("allowedNamespaces.selector: %v", err)}
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Metadata.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return sel.Matches(labels.Set(ns.Labels)), nil
}

// firstScopeNotAllowed returns the first requested scope no pattern allows;
// with patterns set, a request for no scope at all is refused too (it would
// get whatever the client may have).
func firstScopeNotAllowed(patterns, scopes []string) (string, bool) {
	if patterns == nil {
		return "", true
	}
	if len(scopes) == 0 {
		return "", false
	}
	for _, s := range scopes {
		if !matchesAny(patterns, s) {
			return s, false
		}
	}
	return "", true
}

// globMatch reports whether s matches pattern, where * matches any run of
// characters (slashes included) and everything else matches itself.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}
