package tokenrequest

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
)

// restartTarget restarts a workload that reads the token only at start, the
// way kubectl rollout restart does: a new pod-template annotation, here the
// token's issue time, so that patching again for the same token is a no-op.
func (r *Reconciler) restartTarget(ctx context.Context, namespace string, t v1.RolloutRestartTarget, tokenIssuedAt time.Time) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, v1.AnnotationRestartedAt, tokenIssuedAt.UTC().Format(time.RFC3339)))
	obj, err := workload(t.Kind)
	if err != nil {
		return err
	}
	obj.SetNamespace(namespace)
	obj.SetName(t.Name)
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		if apierrors.IsForbidden(err) {
			return resolve.Forbidden(fmt.Sprintf("patching %s %q for a rollout restart (apps %ss patch)", t.Kind, t.Name, strings.ToLower(t.Kind)), namespace)
		}
		return fmt.Errorf("restarting %s %q: %w", t.Kind, t.Name, err)
	}
	return nil
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
