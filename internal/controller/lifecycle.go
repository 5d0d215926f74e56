package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/secretdata"
)

// converge brings a Secret that keeps its token in line with the spec
// without any token call: owner reference per deletionPolicy, labels,
// bookkeeping without stale entries, and nothing a dropped template key
// left behind. It writes only when something differs.
func (r *TokenRequestReconciler) converge(ctx context.Context, tr *v1.TokenRequest, o observed, p plan, secret *corev1.Secret) error {
	if secret == nil || o.secret == nil || !o.secret.HasToken {
		return nil
	}
	hint := o.secret.RefreshHint
	if !hint.After(o.secret.IssuedAt) {
		hint = time.Time{} // stale: it came with an earlier token
	}
	rendered, err := secretdata.Render(secretdata.Input{
		TokenRequestName: tr.Name, ClientID: tr.Spec.ClientID, Template: tr.Spec.SecretTemplate,
		InputHash: o.inputHash, RefreshRequest: o.secret.RefreshRequest,
		Token: secretdata.Token{
			AccessToken: string(secret.Data[v1.KeyAccessToken]), TokenType: string(secret.Data[v1.KeyTokenType]), Scopes: tr.Status.Scopes,
			IssuedAt: o.secret.IssuedAt, ExpiresAt: o.secret.ExpiresAt, RefreshAt: p.refreshAt, RefreshHint: hint,
		},
	})
	if err != nil {
		return nil // the template is reported when the next token is written
	}
	// The data is intact and rendered from this template already: keep it as it is.
	rendered.Type, rendered.Data = secret.Type, secret.Data
	rendered.Annotations[secretdata.AnnotationDataHash] = secret.Annotations[secretdata.AnnotationDataHash]
	return r.writeSecret(ctx, tr, o.secretName, secret, rendered)
}

// leaveOldSecret deletes (Delete policy) or releases (Retain) the Secret a
// TokenRequest wrote before its secretName changed, once the new Secret
// holds a valid token.
func (r *TokenRequestReconciler) leaveOldSecret(ctx context.Context, tr *v1.TokenRequest, o observed) error {
	prev := o.previousSecret
	if prev == "" || prev == o.secretName || !isReady(tr) || tr.Status.SecretName != o.secretName {
		return nil
	}
	old, err := r.outputSecret(ctx, tr.Namespace, prev)
	if err != nil || old == nil || !managedBy(old, tr) {
		return err
	}
	if tr.Spec.DeletionPolicy == v1.DeletionPolicyRetain {
		released := old.DeepCopy()
		if err := controllerutil.RemoveOwnerReference(tr, released, r.Scheme); err != nil {
			return err
		}
		delete(released.Labels, v1.LabelManagedBy)
		delete(released.Labels, v1.LabelTokenRequest)
		delete(released.Annotations, v1.AnnotationTokenRequestName)
		if err := r.Client.Update(ctx, released); err != nil {
			return err
		}
		log.FromContext(ctx).Info("released the former output Secret", "secret", prev)
		return nil
	}
	err = r.Client.Delete(ctx, old, client.Preconditions{UID: &old.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	log.FromContext(ctx).Info("deleted the former output Secret", "secret", prev)
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

// restartPending restarts the workloads still owed a restart for the token
// in the Secret. The restart annotation carries the token's issue time, so
// a repeated patch for the same token restarts nothing.
func (r *TokenRequestReconciler) restartPending(ctx context.Context, tr *v1.TokenRequest, o observed) ctrl.Result {
	pending := slices.DeleteFunc(slices.Clone(tr.Status.PendingRestarts), func(t v1.RolloutRestartTarget) bool {
		return !slices.Contains(tr.Spec.RolloutRestartTargets, t) // no longer asked for
	})
	if len(pending) == 0 || tr.Status.LastRefreshTime == nil {
		tr.Status.PendingRestarts = nil
		return ctrl.Result{}
	}
	var left []v1.RolloutRestartTarget
	var failed, done []string
	for _, t := range pending {
		if !r.restarts.allow(strings.Join([]string{tr.Namespace, t.Kind, t.Name}, "/"), o.now) {
			left = append(left, t)
			continue
		}
		if err := r.restartTarget(ctx, tr.Namespace, t, tr.Status.LastRefreshTime.Time); err != nil {
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
	if len(failed) > 0 {
		r.event(tr, corev1.EventTypeWarning, v1.ReasonRolloutRestartFailed, strings.Join(failed, "; ")+"; retrying")
	}
	if len(left) > 0 {
		return ctrl.Result{RequeueAfter: restartWindow}
	}
	return ctrl.Result{}
}
