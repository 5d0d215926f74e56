package tokenrequest

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/renewal"
	"github.com/token-operator/token-operator/internal/secretdata"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	issued := now.Add(-20 * time.Minute)
	good := func() *secretdata.State {
		return &secretdata.State{HasToken: true, Intact: true, IssuedAt: issued, ExpiresAt: issued.Add(time.Hour),
			InputHash: "in", TemplateHash: secretdata.TemplateHash(nil)}
	}
	failed := func(attempts int32, ago time.Duration, reason, hash string) v1.TokenRequestStatus {
		lf := metav1.NewTime(now.Add(-ago))
		typ := v1.ConditionReconciling
		if stalls(reason) {
			typ = v1.ConditionStalled
		}
		return v1.TokenRequestStatus{FailedAttempts: attempts, LastFailureTime: &lf, LastFailureInputHash: hash,
			Conditions: []metav1.Condition{{Type: typ, Status: metav1.ConditionTrue, Reason: reason}}}
	}
	cases := []struct {
		name   string
		edit   func(*observed)
		action action
		newer  bool
	}{
		{"a valid token for the same inputs is kept until its refresh time", func(o *observed) {}, actKeep, false},
		{"no Secret at all is issued", func(o *observed) { o.secret = nil }, actIssue, false},
		{"an expired token is issued again", func(o *observed) { o.now = issued.Add(time.Hour) }, actIssue, false},
		{"changed inputs mint at once", func(o *observed) { o.inputHash = "other" }, actIssue, false},
		{"two thirds into the lifetime a newer token is due", func(o *observed) { o.now = issued.Add(41 * time.Minute) }, actIssue, true},
		{"a token expiring with the TokenRequest it was exchanged for is not due before it expires", func(o *observed) {
			o.now, o.subjectExpires = issued.Add(59*time.Minute), issued.Add(time.Hour)
		}, actKeep, false},
		{"an exchanged token expiring before its subject is due two thirds into its lifetime", func(o *observed) {
			o.now, o.subjectExpires = issued.Add(41*time.Minute), issued.Add(2*time.Hour)
		}, actIssue, true},
		{"renewBefore 45m makes a 20-minute-old hour token due", func(o *observed) {
			d := 45 * time.Minute
			o.policy.RenewBefore = &d
		}, actIssue, true},
		{"a refresh hint in the past makes the token due", func(o *observed) { o.secret.RefreshHint = now.Add(-time.Second) }, actIssue, true},
		{"a refresh hint from before the token was issued is stale and ignored", func(o *observed) { o.secret.RefreshHint = issued.Add(-time.Minute) }, actKeep, false},
		{"a hint one second after the issue waits for the 30 s refresh floor", func(o *observed) {
			o.secret.IssuedAt, o.secret.ExpiresAt = now.Add(-10*time.Second), now.Add(time.Hour)
			o.secret.RefreshHint = o.secret.IssuedAt.Add(time.Second)
		}, actKeep, false},
		{"a renewBefore as long as the lifetime cannot make a token due at once", func(o *observed) {
			o.secret.IssuedAt, o.secret.ExpiresAt = now.Add(-10*time.Second), now.Add(time.Hour)
			d := time.Hour
			o.policy.RenewBefore = &d
		}, actKeep, false},
		{"an expired short-lived token is issued again", func(o *observed) {
			o.secret.IssuedAt, o.secret.ExpiresAt = now.Add(-10*time.Second), now.Add(-5*time.Second)
		}, actIssue, false},
		{"an expiry on the Secret that disagrees with the status is not trusted", func(o *observed) {
			li, exp := metav1.NewTime(issued), metav1.NewTime(issued.Add(time.Hour))
			o.tr.Status.LastRefreshTime, o.tr.Status.ExpiresAt = &li, &exp
			o.secret.ExpiresAt = issued.Add(10 * time.Hour)
		}, actIssue, false},
		{"a next retry time stored with its jitter is waited for", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, 6*time.Second, v1.ReasonTokenServiceUnavailable, "attempt")
			next := metav1.NewTime(now.Add(3 * time.Second))
			o.tr.Status.NextRetryTime = &next
		}, actWaitRetry, false},
		{"a new refresh-requested-at value forces a newer token", func(o *observed) {
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
		}, actIssue, true},
		{"a refresh request already acted on is ignored", func(o *observed) {
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
			o.tr.Status.LastRefreshRequestedAt = "now"
		}, actKeep, false},
		{"data edited by hand is restored", func(o *observed) { o.secret.Intact = false }, actIssue, false},
		{"a changed template re-renders", func(o *observed) {
			o.tr.Spec.SecretTemplate = &v1.SecretTemplate{Data: map[string]string{"h": "x"}}
		}, actIssue, false},
		{"a foreign Secret is a conflict", func(o *observed) { o.foreign = true }, actConflict, false},
		{"an unusable credential keeps what is there", func(o *observed) { o.credentialOK = false }, actCredentialError, false},
		{"a retryable failure 2 s ago waits for its 5 s backoff", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, 2*time.Second, v1.ReasonTokenServiceUnavailable, "attempt")
		}, actWaitRetry, false},
		{"a retryable failure 6 s ago is retried", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, 6*time.Second, v1.ReasonTokenServiceUnavailable, "attempt")
		}, actIssue, false},
		{"a Retry-After longer than the backoff is honoured", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, 6*time.Second, v1.ReasonTokenServiceUnavailable, "attempt")
			o.retryNotBefore = now.Add(10 * time.Second)
		}, actWaitRetry, false},
		{"a first terminal failure 30 s ago still waits", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, 30*time.Second, v1.ReasonTokenServiceRejected, "attempt")
		}, actWaitRetry, false},
		{"a first terminal failure 61 s ago is tried once more", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, 61*time.Second, v1.ReasonTokenServiceRejected, "attempt")
		}, actIssue, false},
		{"a fourth terminal failure 7 minutes ago waits for its 8 minutes", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(4, 7*time.Minute, v1.ReasonTokenServiceRejected, "attempt")
		}, actWaitRetry, false},
		{"the tenth terminal failure 59 minutes ago still waits out the hour", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(10, 59*time.Minute, v1.ReasonTokenServiceRejected, "attempt")
		}, actWaitRetry, false},
		{"a terminal failure is retried at once when the inputs change", func(o *observed) {
			o.secret = nil
			o.tr.Status = failed(1, time.Second, v1.ReasonTokenServiceRejected, "before-rotation")
		}, actIssue, false},
		{"a forced refresh skips the backoff", func(o *observed) {
			o.tr.Status = failed(3, time.Second, v1.ReasonTokenServiceRejected, "attempt")
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "again"}
		}, actIssue, true},
		{"a forced refresh within the interval of a failed forced call waits", func(o *observed) {
			o.tr.Status = failed(3, time.Second, v1.ReasonTokenServiceRejected, "attempt")
			o.tr.Status.LastForcedRefreshTime = &metav1.Time{Time: now.Add(-time.Second)}
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "again"}
		}, actKeep, false},
		{"the first forced refresh is made at once, however new the token", func(o *observed) {
			o.secret.IssuedAt, o.secret.ExpiresAt = now.Add(-10*time.Second), now.Add(time.Hour)
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
		}, actIssue, true},
		{"a forced refresh within the interval of the last forced one waits", func(o *observed) {
			o.tr.Status.LastForcedRefreshTime = &metav1.Time{Time: now.Add(-10 * time.Second)}
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
		}, actKeep, false},
		{"a forced refresh the interval after the last forced one is made", func(o *observed) {
			o.tr.Status.LastForcedRefreshTime = &metav1.Time{Time: now.Add(-30 * time.Second)}
			o.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
		}, actIssue, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := observed{now: now, tr: &v1.TokenRequest{}, secret: good(), inputHash: "in", attemptHash: "attempt",
				credentialOK: true, policy: renewal.Policy{MinRemaining: 2 * time.Minute, MinInterval: 30 * time.Second}}
			tc.edit(&o)
			p := decide(o)
			if p.action != tc.action || p.newer != tc.newer {
				t.Fatalf("decide = action %d newer %v (%s), want action %d newer %v", p.action, p.newer, p.why, tc.action, tc.newer)
			}
			if p.action == actKeep && !p.refreshAt.After(o.now) {
				t.Errorf("kept with a refresh time %v not after now", p.refreshAt)
			}
		})
	}
}

// A token following its subject is looked at every subjectRecheck, in
// case the watch on the subject's Secret missed its refresh.
func TestAnExchangedTokenFollowingItsSubjectIsRecheckedEveryMinute(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	exp := now.Add(40 * time.Minute)
	o := observed{now: now, tr: &v1.TokenRequest{}, inputHash: "in", attemptHash: "attempt", credentialOK: true,
		secret: &secretdata.State{HasToken: true, Intact: true, IssuedAt: now.Add(-20 * time.Minute), ExpiresAt: exp,
			InputHash: "in", TemplateHash: secretdata.TemplateHash(nil)},
		subjectExpires: exp, policy: renewal.Policy{MinRemaining: 2 * time.Minute, MinInterval: 30 * time.Second}}
	p := decide(o)
	if p.action != actKeep || !p.refreshAt.Equal(exp) || !p.requeueAt.Equal(now.Add(subjectRecheck)) {
		t.Fatalf("action %s, refresh at %v, requeue at %v", p.action, p.refreshAt, p.requeueAt)
	}
	if p.status.RefreshAt == nil || !p.status.RefreshAt.Time.Equal(exp) {
		t.Errorf("status.refreshAt %v", p.status.RefreshAt)
	}
}

func TestHealthOf(t *testing.T) {
	now := time.Now()
	st := &secretdata.State{HasToken: true, ExpiresAt: now.Add(time.Minute), InputHash: "a"}
	cases := []struct {
		name string
		o    observed
		want tokenHealth
	}{
		{"an unexpired token for the current inputs is valid", observed{now: now, secret: st, inputHash: "a", credentialOK: true}, validToken},
		{"a token for other inputs is stale", observed{now: now, secret: st, inputHash: "b", credentialOK: true}, staleToken},
		{"with an unusable credential an unexpired token counts as valid", observed{now: now, secret: st}, validToken},
		{"a token past its expiry is expired", observed{now: now.Add(time.Hour), secret: st, credentialOK: true, inputHash: "a"}, expiredToken},
		{"a foreign Secret holds no token of ours", observed{now: now, secret: st, foreign: true}, noToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := healthOf(tc.o); got != tc.want {
				t.Errorf("healthOf = %d, want %d", got, tc.want)
			}
		})
	}
}
