package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// restartTargets restarts the workloads that read the token only at start,
// the way kubectl rollout restart does: a new pod-template annotation. One
// failing target does not keep the others from restarting.
func (r *TokenRequestReconciler) restartTargets(ctx context.Context, tr *v1.TokenRequest, at time.Time) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, v1.AnnotationRestartedAt, at.UTC().Format(time.RFC3339)))
	var errs []error
	for _, t := range tr.Spec.RolloutRestartTargets {
		obj, err := workload(t.Kind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		obj.SetNamespace(tr.Namespace)
		obj.SetName(t.Name)
		if err := r.Client.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			errs = append(errs, fmt.Errorf("restarting %s %q: %w", t.Kind, t.Name, err))
		}
	}
	return errors.Join(errs...)
}

func workload(kind string) (client.Object, error) {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}, nil
	case "StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "DaemonSet":
		return &appsv1.DaemonSet{}, nil
	}
	return nil, fmt.Errorf("cannot restart a %s", kind)
}
