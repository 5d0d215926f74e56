package tokenrequest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
)

// leaveFormer deletes or releases, as planned, the Secret a renamed output
// left behind.
func (r *Reconciler) leaveFormer(ctx context.Context, p plan) error {
	old := p.former
	if old == nil {
		return nil
	}
	if !p.deleteFormer {
		if err := r.Client.Update(ctx, old); err != nil {
			return err
		}
		log.FromContext(ctx).Info("released the former output Secret", "secret", old.Name)
		return nil
	}
	if err := r.Client.Delete(ctx, old, client.Preconditions{UID: &old.UID}); err != nil && !apierrors.IsNotFound(err) {
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
// restarted too recently for a later pass. The restart annotation carries
// the token's issue time, so a repeated patch for the same token restarts
// nothing.
func (r *Reconciler) restartOwed(ctx context.Context, tr *v1.TokenRequest, now time.Time) ctrl.Result {
	var left []v1.RolloutRestartTarget
	var failed, denied, done []string
	for _, t := range tr.Status.PendingRestarts {
		if !r.restarts.allow(strings.Join([]string{tr.Namespace, t.Kind, t.Name}, "/"), now) {
			left = append(left, t)
			continue
		}
		if err := r.restartTarget(ctx, tr.Namespace, t, tr.Status.LastRefreshTime.Time); err != nil {
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
		r.event(tr, corev1.EventTypeNormal, v1.ReasonRolloutRestarted, fmt.Sprintf("restarted %s for the token issued at %s", strings.Join(done, ", "), formatTime(tr.Status.LastRefreshTime.Time)))
	}
	if len(denied) > 0 {
		r.event(tr, corev1.EventTypeWarning, v1.ReasonPermissionDenied, strings.Join(denied, "; ")+"; not retried before the next token")
	}
	if len(failed) > 0 {
		r.event(tr, corev1.EventTypeWarning, v1.ReasonRolloutRestartFailed, strings.Join(failed, "; ")+"; retrying")
	}
	if len(left) > 0 {
		return ctrl.Result{RequeueAfter: restartWindow}
	}
	return ctrl.Result{}
}
