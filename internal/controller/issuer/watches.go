package issuer

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/resolve"
)

// Options wire the issuer reconcilers into a manager.
type Options struct {
	Resolver *resolve.Resolver
	Metrics  *metrics.Collectors
	// SecretMetadata is the metadata cache of the Secrets the operator does
	// not write (see tokenrequest.SetupOptions).
	SecretMetadata cache.Cache
	// ClusterResourceNamespace holds the credentials of ClusterTokenIssuers.
	ClusterResourceNamespace string
	// CountRequests writes how many TokenRequests name each issuer;
	// off in a shard that sees only part of them.
	CountRequests bool
}

// SetupWithManager adds a status controller per issuer kind; each also
// counts the TokenRequests that come and go. index.Register adds the
// indexes first.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.SecretMetadata == nil {
		return errors.New("issuer.Options.SecretMetadata is required")
	}
	for kind, obj := range map[string]client.Object{v1.KindTokenIssuer: &v1.TokenIssuer{}, v1.KindClusterTokenIssuer: &v1.ClusterTokenIssuer{}} {
		ir := &Reconciler{Client: mgr.GetClient(), Resolver: opts.Resolver, Metrics: opts.Metrics, Kind: kind, CountRequests: opts.CountRequests}
		m := users{client: mgr.GetClient(), clusterResourceNamespace: opts.ClusterResourceNamespace, kind: kind}
		secretMeta := &metav1.PartialObjectMetadata{}
		secretMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := ctrl.NewControllerManagedBy(mgr).
			Named(strings.ToLower(kind)).
			For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			Watches(&v1.TokenRequest{}, handler.EnqueueRequestsFromMapFunc(issuerOf(kind)), builder.WithPredicates(issuerRefChanged{})).
			WatchesRawSource(source.Kind(opts.SecretMetadata, secretMeta, handler.TypedEnqueueRequestsFromMapFunc(m.usingSecret))).
			Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(m.using("Secret"))).
			WatchesMetadata(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(m.using("ServiceAccount")),
				builder.WithPredicates(predicate.Or(predicate.AnnotationChangedPredicate{}, predicate.ResourceVersionChangedPredicate{}))).
			Complete(ir)
		if err != nil {
			return err
		}
	}
	return nil
}

// users maps credential objects to the issuers of one kind that use them.
type users struct {
	client                   client.Reader
	clusterResourceNamespace string
	kind                     string
}

// usingSecret maps a Secret to the issuers that hold their credential in it.
func (u users) usingSecret(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
	return requestsFor(index.IssuersUsing(ctx, u.client, u.clusterResourceNamespace, u.kind, o.Namespace, "Secret/"+o.Name))
}

// using maps a credential object of sourceKind to the issuers that use it.
func (u users) using(sourceKind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return requestsFor(index.IssuersUsing(ctx, u.client, u.clusterResourceNamespace, u.kind, o.GetNamespace(), sourceKind+"/"+o.GetName()))
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
