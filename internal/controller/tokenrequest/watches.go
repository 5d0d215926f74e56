package tokenrequest

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// SetupOptions wire the reconciler into a manager.
type SetupOptions struct {
	MaxConcurrentReconciles int
	// MaxTokenCallsPerNamespace bounds the token calls one namespace has
	// under way, so that a slow token service cannot take every worker; 0
	// means no bound.
	MaxTokenCallsPerNamespace int
	// TokenCallsPerNamespacePerSecond and TokenCallBurstPerNamespace are
	// each namespace's token bucket on token calls; a rate of 0 means no bound.
	TokenCallsPerNamespacePerSecond float64
	TokenCallBurstPerNamespace      int
	// SecretMetadata is a cache of the metadata of every Secret but the
	// operator's own (UnmanagedSecretSelector), which the manager's cache
	// holds whole; it sees credential Secrets (and foreign Secrets in the
	// way) without ever holding their data.
	SecretMetadata cache.Cache
}

// SetupWithManager registers the watches; index.Register adds the indexes first.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts SetupOptions) error {
	if opts.SecretMetadata == nil {
		return errNoMetadataCache
	}
	r.slots = tokensource.NewCallSlots(opts.MaxTokenCallsPerNamespace)
	r.rate = tokensource.NewCallRate(opts.TokenCallsPerNamespacePerSecond, opts.TokenCallBurstPerNamespace)
	r.Metadata = opts.SecretMetadata
	if r.Resolver.Metadata == nil {
		r.Resolver.Metadata = opts.SecretMetadata
	}
	secretMeta := metadataOf("Secret")
	nsMeta := metadataOf("Namespace")
	return ctrl.NewControllerManagedBy(mgr).
		Named("tokenrequest").
		For(&v1.TokenRequest{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.managedSecretUsers)).
		Watches(&v1.TokenRequest{}, handler.EnqueueRequestsFromMapFunc(r.exchangersOfRequest), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.referrers("ServiceAccount")),
			builder.WithPredicates(predicate.Or(predicate.AnnotationChangedPredicate{}, predicate.ResourceVersionChangedPredicate{}))).
		WatchesRawSource(source.Kind(opts.SecretMetadata, secretMeta, handler.TypedEnqueueRequestsFromMapFunc(r.secretReferrers))).
		Watches(&v1.TokenIssuer{}, handler.EnqueueRequestsFromMapFunc(r.issuerUsers(v1.KindTokenIssuer)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1.ClusterTokenIssuer{}, handler.EnqueueRequestsFromMapFunc(r.issuerUsers(v1.KindClusterTokenIssuer)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Kind(opts.SecretMetadata, nsMeta, handler.TypedEnqueueRequestsFromMapFunc(r.clusterIssuerUsersIn),
			predicate.TypedLabelChangedPredicate[*metav1.PartialObjectMetadata]{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}

// managedSecretOwner maps an operator-written Secret to its TokenRequest;
// the label works under both deletion policies, owner reference or not.
func managedSecretOwner(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[v1.AnnotationTokenRequestName] // the label may hold a shortened name
	if name == "" {
		name = o.GetLabels()[v1.LabelTokenRequest]
	}
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// referrers lists the TokenRequests whose credential is the object.
func (r *Reconciler) referrers(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs := index.TokenRequests(ctx, r.Client, o.GetNamespace(), index.Credential, kind+"/"+o.GetName())
		return append(reqs, r.usersOfIssuersUsing(ctx, o.GetNamespace(), kind+"/"+o.GetName())...)
	}
}

// secretReferrers maps any other Secret's metadata to the TokenRequests that
// use it as a credential or want its name for their output.
func (r *Reconciler) secretReferrers(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
	return r.secretUsers(ctx, o.GetNamespace(), o.GetName())
}

// managedSecretUsers maps one of the operator's Secrets to its TokenRequest
// and to the ones secretReferrers would find, since the metadata cache does
// not see it.
func (r *Reconciler) managedSecretUsers(ctx context.Context, o client.Object) []reconcile.Request {
	owner := managedSecretOwner(ctx, o)
	return append(append(owner, r.secretUsers(ctx, o.GetNamespace(), o.GetName())...), r.exchangersOf(ctx, owner)...)
}

// exchangersOfRequest maps a TokenRequest created, changed or deleted to
// those exchanging its token, whose chain (a cycle, a missing subject) it
// may change.
func (r *Reconciler) exchangersOfRequest(ctx context.Context, o client.Object) []reconcile.Request {
	return r.exchangersOf(ctx, []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}})
}

// exchangersOf maps the TokenRequests whose output Secret changed to those
// that exchange their token (tokenRequestRef), so that a subject token
// written or refreshed is exchanged at once.
func (r *Reconciler) exchangersOf(ctx context.Context, owners []reconcile.Request) []reconcile.Request {
	var reqs []reconcile.Request
	for _, o := range owners {
		reqs = append(reqs, index.TokenRequests(ctx, r.Client, o.Namespace, index.SubjectTokenRequest, o.Name)...)
	}
	return reqs
}

func (r *Reconciler) secretUsers(ctx context.Context, namespace, name string) []reconcile.Request {
	reqs := index.TokenRequests(ctx, r.Client, namespace, index.Credential, "Secret/"+name)
	reqs = append(reqs, index.TokenRequests(ctx, r.Client, namespace, index.OutputSecret, name)...)
	return append(reqs, r.usersOfIssuersUsing(ctx, namespace, "Secret/"+name)...)
}

var errNoMetadataCache = errors.New("SetupOptions.SecretMetadata is required")

// issuerUsers maps an issuer to the TokenRequests that name it.
func (r *Reconciler) issuerUsers(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return index.TokenRequests(ctx, r.Client, o.GetNamespace(), index.Issuer, kind+"/"+o.GetName())
	}
}

// clusterIssuerUsersIn maps a namespace whose labels changed to its
// TokenRequests that name a ClusterTokenIssuer, whose allowedNamespaces
// selector may now decide otherwise.
func (r *Reconciler) clusterIssuerUsersIn(ctx context.Context, ns *metav1.PartialObjectMetadata) []reconcile.Request {
	var trs v1.TokenRequestList
	if err := r.Client.List(ctx, &trs, client.InNamespace(ns.Name)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing TokenRequests", "namespace", ns.Name)
		return nil
	}
	var reqs []reconcile.Request
	for _, tr := range trs.Items {
		if ref := tr.Spec.IssuerRef; ref != nil && resolve.IssuerKind(ref) == v1.KindClusterTokenIssuer {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tr)})
		}
	}
	return reqs
}

// usersOfIssuersUsing maps a credential to the TokenRequests of every issuer that uses it.
func (r *Reconciler) usersOfIssuersUsing(ctx context.Context, namespace, source string) []reconcile.Request {
	var reqs []reconcile.Request
	for _, kind := range []string{v1.KindTokenIssuer, v1.KindClusterTokenIssuer} {
		for _, is := range index.IssuersUsing(ctx, r.Client, r.ClusterResourceNamespace, kind, namespace, source) {
			reqs = append(reqs, r.issuerUsers(kind)(ctx, is)...)
		}
	}
	return reqs
}
