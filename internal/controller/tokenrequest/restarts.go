package tokenrequest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
)

// leaveFormer deletes or releases, as planned, the Secret a renamed output
// left behind.
func leaveFormer(ctx context.Context, c client.Writer, p plan) error {
	old := p.former
	if old == nil {
		return nil
	}
	if !p.deleteFormer {
		if err := c.Update(ctx, old); err != nil {
			return err
		}
		log.FromContext(ctx).Info("released the former output Secret", "secret", old.Name)
		return nil
	}
	if err := c.Delete(ctx, old, client.Preconditions{UID: &old.UID}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	log.FromContext(ctx).Info("deleted the former output Secret", "secret", old.Name)
	return nil
}

// restartWindow is how often one workload is restarted at most.
const restartWindow = 30 * time.Second

// restartLimiter remembers when each workload was last restarted.
type restartLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time // namespace/kind/name → last restart
}

// allow reports whether key may restart at now, and records it if so.
func (l *restartLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	for k, t := range l.last { // forget what the window no longer covers
		if now.Sub(t) >= restartWindow {
			delete(l.last, k)
		}
	}
	if _, recent := l.last[key]; recent {
		return false
	}
	l.last[key] = now
	return true
}

// restartOwed restarts the workloads still owed a restart for the token in
// the Secret (tr.Status.PendingRestarts) and keeps those that failed or
// restarted too recently for a later pass, and returns the events to send.
// The restart annotation carries the token's issue time, so a repeated
// patch for the same token restarts nothing.
func (l *restartLimiter) restartOwed(ctx context.Context, c client.Writer, tr *v1.TokenRequest, now time.Time) (ctrl.Result, []pendingEvent) {
	var left []v1.RolloutRestartTarget
	var failed, denied, done []string
	var events []pendingEvent
	for _, t := range tr.Status.PendingRestarts {
		if !l.allow(strings.Join([]string{tr.Namespace, t.Kind, t.Name}, "/"), now) {
			left = append(left, t)
			continue
		}
		if err := restartTarget(ctx, c, tr.Namespace, t, tr.Status.LastRefreshTime.Time); err != nil {
			var ce *resolve.Refusal
			if errors.As(err, &ce) { // 403: retrying every restartWindow would not help
				denied = append(denied, err.Error())
				continue
			}
			left = append(left, t)
			failed = append(failed, err.Error())
			continue
		}
		done = append(done, t.Kind+"/"+t.Name)
	}
	tr.Status.PendingRestarts = left
	if len(done) > 0 {
		addEvent(&events, corev1.EventTypeNormal, v1.ReasonRolloutRestarted, fmt.Sprintf("restarted %s for the token issued at %s", strings.Join(done, ", "), formatTime(tr.Status.LastRefreshTime.Time)))
	}
	if len(denied) > 0 {
		addEvent(&events, corev1.EventTypeWarning, v1.ReasonPermissionDenied, strings.Join(denied, "; ")+"; not retried before the next token")
	}
	if len(failed) > 0 {
		addEvent(&events, corev1.EventTypeWarning, v1.ReasonRolloutRestartFailed, strings.Join(failed, "; ")+"; retrying")
	}
	if len(left) > 0 {
		return ctrl.Result{RequeueAfter: restartWindow}, events
	}
	return ctrl.Result{}, events
}

// restartTarget restarts a workload that reads the token only at start, the
// way kubectl rollout restart does: a new pod-template annotation, here the
// token's issue time, so that patching again for the same token is a no-op.
func restartTarget(ctx context.Context, c client.Writer, namespace string, t v1.RolloutRestartTarget, tokenIssuedAt time.Time) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, v1.AnnotationRestartedAt, tokenIssuedAt.UTC().Format(time.RFC3339)))
	obj, err := workload(t.Kind)
	if err != nil {
		return err
	}
	obj.SetNamespace(namespace)
	obj.SetName(t.Name)
	if err := c.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
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
