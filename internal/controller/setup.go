package controller

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
)

// Field indexes on TokenRequests.
const (
	// indexCredential holds "Secret/<name>" or "ServiceAccount/<name>".
	indexCredential = "spec.credential.source"
	// indexOutputSecret holds the output Secret's name.
	indexOutputSecret = "spec.secretName.effective"
)

// SetupOptions wire the reconciler into a manager.
type SetupOptions struct {
	MaxConcurrentReconciles int
	// MaxTokenCallsPerNamespace bounds the token calls one namespace has
	// under way, so that a slow token service cannot take every worker; 0
	// means no bound.
	MaxTokenCallsPerNamespace int
	// SecretMetadata is a cache of Secret metadata with no label selector;
	// it sees credential Secrets (and foreign Secrets in the way) without
	// ever holding their data.
	SecretMetadata cache.Cache
}

// ManagedSecretSelector limits the manager's Secret cache to the Secrets the
// operator writes.
func ManagedSecretSelector() map[string]string {
	return map[string]string{v1.LabelManagedBy: v1.ManagedByValue}
}

// SetupWithManager registers indexes and watches.
func (r *TokenRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts SetupOptions) error {
	if opts.SecretMetadata == nil {
		return errNoMetadataCache
	}
	r.slots = newCallSlots(opts.MaxTokenCallsPerNamespace)
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1.TokenRequest{}, indexCredential, credentialIndex); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1.TokenRequest{}, indexOutputSecret, outputSecretIndex); err != nil {
		return err
	}
	secretMeta := &metav1.PartialObjectMetadata{}
	secretMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return ctrl.NewControllerManagedBy(mgr).
		Named("tokenrequest").
		For(&v1.TokenRequest{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(managedSecretOwner)).
		WatchesMetadata(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.referrers("ServiceAccount")),
			builder.WithPredicates(predicate.Or(predicate.AnnotationChangedPredicate{}, predicate.ResourceVersionChangedPredicate{}))).
		WatchesRawSource(source.Kind(opts.SecretMetadata, secretMeta, handler.TypedEnqueueRequestsFromMapFunc(r.secretReferrers))).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}

func credentialIndex(o client.Object) []string {
	s := sourceOf(o.(*v1.TokenRequest))
	if s.kind == "" {
		return nil
	}
	return []string{s.kind + "/" + s.name}
}

func outputSecretIndex(o client.Object) []string {
	tr := o.(*v1.TokenRequest)
	return []string{orDefault(tr.Spec.SecretName, tr.Name)}
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
func (r *TokenRequestReconciler) referrers(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.list(ctx, o.GetNamespace(), indexCredential, kind+"/"+o.GetName())
	}
}

// secretReferrers maps any Secret's metadata to the TokenRequests that use it
// as a credential or want its name for their output.
func (r *TokenRequestReconciler) secretReferrers(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
	reqs := r.list(ctx, o.GetNamespace(), indexCredential, "Secret/"+o.GetName())
	return append(reqs, r.list(ctx, o.GetNamespace(), indexOutputSecret, o.GetName())...)
}

func (r *TokenRequestReconciler) list(ctx context.Context, namespace, index, value string) []reconcile.Request {
	var trs v1.TokenRequestList
	if err := r.Client.List(ctx, &trs, client.InNamespace(namespace), client.MatchingFields{index: value}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing TokenRequests", "index", index)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(trs.Items))
	for _, tr := range trs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}})
	}
	return reqs
}

// StripForCache drops what a metadata cache never needs and must not hold:
// managed fields, and the last-applied annotation, which carries a Secret's
// whole data when it was created with kubectl apply.
func StripForCache(obj any) (any, error) {
	if o, ok := obj.(client.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, has := a[corev1.LastAppliedConfigAnnotation]; has {
				delete(a, corev1.LastAppliedConfigAnnotation)
				o.SetAnnotations(a)
			}
		}
		return o, nil
	}
	return obj, nil
}

var errNoMetadataCache = errors.New("SetupOptions.SecretMetadata is required")
