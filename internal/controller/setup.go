package controller

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Field indexes on TokenRequests.
const (
	// indexCredential holds "Secret/<name>" or "ServiceAccount/<name>".
	indexCredential = "spec.credential.source"
	// indexOutputSecret holds the output Secret's name.
	indexOutputSecret = "spec.secretName.effective"
	// indexIssuer holds "TokenIssuer/<name>" or "ClusterTokenIssuer/<name>".
	indexIssuer = "spec.issuerRef.effective"
	// indexIssuerCredential, on issuers, is indexCredential's twin.
	indexIssuerCredential = "spec.credential.source"
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
	// CountIssuerRequests writes how many TokenRequests name each issuer;
	// off in a shard that sees only part of them.
	CountIssuerRequests bool
}

// ManagedSecretSelector limits the manager's Secret cache to the Secrets the
// operator writes.
func ManagedSecretSelector() map[string]string {
	return map[string]string{v1.LabelManagedBy: v1.ManagedByValue}
}

// UnmanagedSecretSelector is every other Secret: the metadata cache's
// share, so that no Secret is cached twice.
func UnmanagedSecretSelector() labels.Selector {
	req, err := labels.NewRequirement(v1.LabelManagedBy, selection.NotEquals, []string{v1.ManagedByValue})
	if err != nil {
		panic(err) // a constant key and value
	}
	return labels.NewSelector().Add(*req)
}

// SetupWithManager registers indexes and watches.
func (r *TokenRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts SetupOptions) error {
	if opts.SecretMetadata == nil {
		return errNoMetadataCache
	}
	r.slots = tokensource.NewCallSlots(opts.MaxTokenCallsPerNamespace)
	r.rate = tokensource.NewCallRate(opts.TokenCallsPerNamespacePerSecond, opts.TokenCallBurstPerNamespace)
	r.Metadata = opts.SecretMetadata
	if r.Resolver.Metadata == nil {
		r.Resolver.Metadata = opts.SecretMetadata
	}
	if err := r.indexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	secretMeta := metadataOf("Secret")
	nsMeta := metadataOf("Namespace")
	err := ctrl.NewControllerManagedBy(mgr).
		Named("tokenrequest").
		For(&v1.TokenRequest{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.managedSecretUsers)).
		WatchesMetadata(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.referrers("ServiceAccount")),
			builder.WithPredicates(predicate.Or(predicate.AnnotationChangedPredicate{}, predicate.ResourceVersionChangedPredicate{}))).
		WatchesRawSource(source.Kind(opts.SecretMetadata, secretMeta, handler.TypedEnqueueRequestsFromMapFunc(r.secretReferrers))).
		Watches(&v1.TokenIssuer{}, handler.EnqueueRequestsFromMapFunc(r.issuerUsers(v1.KindTokenIssuer)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1.ClusterTokenIssuer{}, handler.EnqueueRequestsFromMapFunc(r.issuerUsers(v1.KindClusterTokenIssuer)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Kind(opts.SecretMetadata, nsMeta, handler.TypedEnqueueRequestsFromMapFunc(r.clusterIssuerUsersIn),
			predicate.TypedLabelChangedPredicate[*metav1.PartialObjectMetadata]{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return err
	}
	return r.setupIssuers(mgr, opts)
}

func (r *TokenRequestReconciler) indexFields(ctx context.Context, idx client.FieldIndexer) error {
	for obj, indexes := range map[client.Object]map[string]client.IndexerFunc{
		&v1.TokenRequest{}:       {indexCredential: credentialIndex, indexOutputSecret: outputSecretIndex, indexIssuer: issuerIndex},
		&v1.TokenIssuer{}:        {indexIssuerCredential: issuerCredentialIndex},
		&v1.ClusterTokenIssuer{}: {indexIssuerCredential: issuerCredentialIndex},
	} {
		for name, fn := range indexes {
			if err := idx.IndexField(ctx, obj, name, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// setupIssuers adds a status controller per issuer kind; each also counts
// the TokenRequests that come and go.
func (r *TokenRequestReconciler) setupIssuers(mgr ctrl.Manager, opts SetupOptions) error {
	for kind, obj := range map[string]client.Object{v1.KindTokenIssuer: &v1.TokenIssuer{}, v1.KindClusterTokenIssuer: &v1.ClusterTokenIssuer{}} {
		ir := &IssuerReconciler{Requests: r, Kind: kind, CountRequests: opts.CountIssuerRequests}
		secretMeta := metadataOf("Secret")
		err := ctrl.NewControllerManagedBy(mgr).
			Named(strings.ToLower(kind)).
			For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			Watches(&v1.TokenRequest{}, handler.EnqueueRequestsFromMapFunc(issuerOf(kind)), builder.WithPredicates(issuerRefChanged{})).
			WatchesRawSource(source.Kind(opts.SecretMetadata, secretMeta, handler.TypedEnqueueRequestsFromMapFunc(r.issuersUsingSecret(kind)))).
			Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.issuersUsing(kind, "Secret"))).
			WatchesMetadata(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.issuersUsing(kind, "ServiceAccount")),
				builder.WithPredicates(predicate.Or(predicate.AnnotationChangedPredicate{}, predicate.ResourceVersionChangedPredicate{}))).
			Complete(ir)
		if err != nil {
			return err
		}
	}
	return nil
}

func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}

func credentialIndex(o client.Object) []string {
	return keys(resolve.CredentialKey(o.(*v1.TokenRequest).Spec.Credential))
}

func issuerIndex(o client.Object) []string {
	ref := o.(*v1.TokenRequest).Spec.IssuerRef
	if ref == nil {
		return nil
	}
	return []string{resolve.IssuerKind(ref) + "/" + ref.Name}
}

func issuerCredentialIndex(o client.Object) []string {
	var c *v1.Credential
	switch i := o.(type) {
	case *v1.TokenIssuer:
		c = &i.Spec.Credential
	case *v1.ClusterTokenIssuer:
		c = &i.Spec.Credential
	}
	return keys(resolve.CredentialKey(c))
}

func keys(key string) []string {
	if key == "" {
		return nil
	}
	return []string{key}
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
		reqs := r.list(ctx, o.GetNamespace(), indexCredential, kind+"/"+o.GetName())
		return append(reqs, r.usersOfIssuersUsing(ctx, o.GetNamespace(), kind+"/"+o.GetName())...)
	}
}

// secretReferrers maps any other Secret's metadata to the TokenRequests that
// use it as a credential or want its name for their output.
func (r *TokenRequestReconciler) secretReferrers(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
	return r.secretUsers(ctx, o.GetNamespace(), o.GetName())
}

// managedSecretUsers maps one of the operator's Secrets to its TokenRequest
// and to the ones secretReferrers would find, since the metadata cache does
// not see it.
func (r *TokenRequestReconciler) managedSecretUsers(ctx context.Context, o client.Object) []reconcile.Request {
	return append(managedSecretOwner(ctx, o), r.secretUsers(ctx, o.GetNamespace(), o.GetName())...)
}

func (r *TokenRequestReconciler) secretUsers(ctx context.Context, namespace, name string) []reconcile.Request {
	reqs := r.list(ctx, namespace, indexCredential, "Secret/"+name)
	reqs = append(reqs, r.list(ctx, namespace, indexOutputSecret, name)...)
	return append(reqs, r.usersOfIssuersUsing(ctx, namespace, "Secret/"+name)...)
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

// KeepSecretIdentity is the metadata cache's transform for Secrets. The
// operator asks it only whether a Secret exists and at which version (it
// reads a credential's data and annotations directly), so everything else,
// labels and annotations of any size included, is dropped.
func KeepSecretIdentity(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return StripForCache(obj)
	}
	m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	return m, nil
}

var errNoMetadataCache = errors.New("SetupOptions.SecretMetadata is required")

// issuerUsers maps an issuer to the TokenRequests that name it.
func (r *TokenRequestReconciler) issuerUsers(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.list(ctx, o.GetNamespace(), indexIssuer, kind+"/"+o.GetName())
	}
}

// clusterIssuerUsersIn maps a namespace whose labels changed to its
// TokenRequests that name a ClusterTokenIssuer, whose allowedNamespaces
// selector may now decide otherwise.
func (r *TokenRequestReconciler) clusterIssuerUsersIn(ctx context.Context, ns *metav1.PartialObjectMetadata) []reconcile.Request {
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

// issuersUsingCredential lists the issuers of kind whose credential is
// source ("Secret/<name>") in namespace: TokenIssuers of that namespace,
// ClusterTokenIssuers when it is the cluster resource namespace.
func (r *TokenRequestReconciler) issuersUsingCredential(ctx context.Context, kind, namespace, source string) []client.Object {
	var objs []client.Object
	switch {
	case kind == v1.KindTokenIssuer:
		var list v1.TokenIssuerList
		if err := r.Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexIssuerCredential: source}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing TokenIssuers")
			return nil
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	case namespace == r.ClusterResourceNamespace:
		var list v1.ClusterTokenIssuerList
		if err := r.Client.List(ctx, &list, client.MatchingFields{indexIssuerCredential: source}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing ClusterTokenIssuers")
			return nil
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	}
	return objs
}

// usersOfIssuersUsing maps a credential to the TokenRequests of every issuer that uses it.
func (r *TokenRequestReconciler) usersOfIssuersUsing(ctx context.Context, namespace, source string) []reconcile.Request {
	var reqs []reconcile.Request
	for _, kind := range []string{v1.KindTokenIssuer, v1.KindClusterTokenIssuer} {
		for _, is := range r.issuersUsingCredential(ctx, kind, namespace, source) {
			reqs = append(reqs, r.issuerUsers(kind)(ctx, is)...)
		}
	}
	return reqs
}

// issuersUsingSecret maps a Secret to the issuers of kind that hold their credential in it.
func (r *TokenRequestReconciler) issuersUsingSecret(kind string) handler.TypedMapFunc[*metav1.PartialObjectMetadata, reconcile.Request] {
	return func(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
		return requestsFor(r.issuersUsingCredential(ctx, kind, o.Namespace, "Secret/"+o.Name))
	}
}

// issuersUsing maps a credential object of sourceKind to the issuers of kind that use it.
func (r *TokenRequestReconciler) issuersUsing(kind, sourceKind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return requestsFor(r.issuersUsingCredential(ctx, kind, o.GetNamespace(), sourceKind+"/"+o.GetName()))
	}
}

func requestsFor(objs []client.Object) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(objs))
	for _, o := range objs {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
	return reqs
}

// issuerOf maps a TokenRequest to the issuer of kind it names, so the
// issuer's count follows TokenRequests as they come and go.
func issuerOf(kind string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		ref := o.(*v1.TokenRequest).Spec.IssuerRef
		if ref == nil || resolve.IssuerKind(ref) != kind {
			return nil
		}
		key := types.NamespacedName{Name: ref.Name}
		if kind == v1.KindTokenIssuer {
			key.Namespace = o.GetNamespace()
		}
		return []reconcile.Request{{NamespacedName: key}}
	}
}

// issuerRefChanged passes TokenRequests created, deleted, or moved to
// another issuer: the events that change an issuer's count.
type issuerRefChanged struct{ predicate.Funcs }

func (issuerRefChanged) Update(e event.UpdateEvent) bool {
	before, after := e.ObjectOld.(*v1.TokenRequest).Spec.IssuerRef, e.ObjectNew.(*v1.TokenRequest).Spec.IssuerRef
	return !equality.Semantic.DeepEqual(before, after)
}

func (issuerRefChanged) Generic(event.GenericEvent) bool { return false }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
