package issuer

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/resolve"
)

// +kubebuilder:rbac:groups=tokens.token-operator.io,resources=tokenissuers;clustertokenissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=tokens.token-operator.io,resources=tokenissuers/status;clustertokenissuers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Reconciler keeps the status of one issuer kind: whether its
// configuration and credential can be used (checked without asking for a
// token), and how many TokenRequests name it.
type Reconciler struct {
	Client client.Client
	// Resolver checks the issuer's configuration and credential as it
	// checks them for the TokenRequests that name it.
	Resolver *resolve.Resolver
	Metrics  *metrics.Collectors
	// Kind is TokenIssuer or ClusterTokenIssuer.
	Kind string
	// CountRequests writes status.tokenRequests; a sharded manager sees only
	// its shard's TokenRequests and leaves the count to the main instance.
	CountRequests bool
}

// issuerObject is an issuer of either kind with its spec and status.
type issuerObject struct {
	client.Object
	status *v1.IssuerStatus
}

func (r *Reconciler) newObject() issuerObject {
	if r.Kind == v1.KindClusterTokenIssuer {
		c := &v1.ClusterTokenIssuer{}
		return issuerObject{Object: c, status: &c.Status}
	}
	t := &v1.TokenIssuer{}
	return issuerObject{Object: t, status: &t.Status}
}

// Reconcile checks one issuer and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.newObject()
	if err := r.Client.Get(ctx, req.NamespacedName, obj.Object); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.ForgetIssuer(r.Kind, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := obj.DeepCopyObject().(client.Object)
	st := obj.status
	ready, err := r.check(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	ready.ObservedGeneration = obj.GetGeneration()
	meta.SetStatusCondition(&st.Conditions, ready)
	meta.SetStatusCondition(&st.Conditions, stalledFor(ready))
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1.ConditionReconciling, Status: metav1.ConditionFalse,
		Reason: v1.ReasonUpToDate, Message: "checked", ObservedGeneration: ready.ObservedGeneration})
	st.ObservedGeneration = obj.GetGeneration()
	if r.CountRequests {
		n, err := r.countRequests(ctx, obj)
		if err != nil {
			return ctrl.Result{}, err
		}
		st.TokenRequests = n
	}
	r.Metrics.SetIssuer(r.Kind, req.Namespace, req.Name, ready.Status == metav1.ConditionTrue, int(st.TokenRequests))
	if equality.Semantic.DeepEqual(orig, obj.Object) {
		return ctrl.Result{}, nil
	}
	err = r.Client.Status().Patch(ctx, obj.Object, client.MergeFrom(orig))
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// check says whether the issuer's configuration and credential can be used.
func (r *Reconciler) check(ctx context.Context, obj issuerObject) (metav1.Condition, error) {
	err := r.Resolver.CheckIssuer(ctx, obj.Object)
	var ce *resolve.Refusal
	switch {
	case err == nil:
		return metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonIssuerChecked,
			Message: "the configuration and the credential can be used"}, nil
	case errors.As(err, &ce):
		return notReady(ce.Reason, ce.Message), nil
	}
	return metav1.Condition{}, err
}

// stalledFor mirrors Ready for kstatus (Flux, kpt): an issuer that cannot
// be used waits for a person, so it is Stalled.
func stalledFor(ready metav1.Condition) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionStalled, Status: metav1.ConditionFalse, Reason: v1.ReasonUpToDate,
		Message: "the issuer can be used", ObservedGeneration: ready.ObservedGeneration}
	if ready.Status != metav1.ConditionTrue {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ready.Reason, ready.Message
	}
	return c
}

func notReady(reason, message string) metav1.Condition {
	return metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: message}
}

// countRequests counts the TokenRequests (of this manager's shard) that name the issuer.
func (r *Reconciler) countRequests(ctx context.Context, obj issuerObject) (int32, error) {
	var trs v1.TokenRequestList
	opts := []client.ListOption{client.MatchingFields{index.Issuer: r.Kind + "/" + obj.GetName()}}
	if r.Kind == v1.KindTokenIssuer {
		opts = append(opts, client.InNamespace(obj.GetNamespace()))
	}
	if err := r.Client.List(ctx, &trs, opts...); err != nil {
		return 0, err
	}
	return int32(len(trs.Items)), nil
}
