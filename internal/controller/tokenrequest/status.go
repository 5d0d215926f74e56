package tokenrequest

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/secretdata"
)

// tokenHealth is what the output Secret holds, seen from the conditions.
type tokenHealth int

const (
	noToken      tokenHealth = iota // no Secret or no token of ours
	validToken                      // an unexpired token for the current inputs
	expiredToken                    // a token of ours that has expired
	staleToken                      // an unexpired token for other inputs (spec or credential changed)
)

func healthOf(o observed) tokenHealth {
	s := o.secret
	switch {
	case o.foreign || s == nil || !s.HasToken:
		return noToken
	case !o.now.Before(s.ExpiresAt):
		return expiredToken
	case o.credentialOK && !sameInputs(o):
		return staleToken
	}
	return validToken
}

func setCondition(tr *v1.TokenRequest, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&tr.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: tr.Generation,
	})
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// markIssued records a token just written.
func markIssued(tr *v1.TokenRequest, o observed, tok secretdata.Token, reason string) {
	st := &tr.Status
	st.SecretName = o.secretName
	st.TokenType = tok.TokenType
	st.Scopes = tok.Scopes
	st.ExpiresAt = metaTime(tok.ExpiresAt)
	st.RefreshAt = metaTime(tok.RefreshAt)
	st.LastRefreshTime = metaTime(tok.IssuedAt)
	st.NextForcedRefreshTime = nil // the request, if any, is recorded in the Secret
	clearFailure(tr)
	setCondition(tr, v1.ConditionReady, metav1.ConditionTrue, reason, validMessage(o, tok.ExpiresAt, tok.RefreshAt))
	markSettled(tr)
}

// validMessage is Ready's message for a valid token.
func validMessage(o observed, expires, refreshAt time.Time) string {
	if !o.subjectExpires.IsZero() && refreshAt.Equal(expires) {
		return fmt.Sprintf("token valid until %s, when its subject's expires; exchanged again when the subject TokenRequest writes a new token", formatTime(expires))
	}
	return fmt.Sprintf("token valid until %s, refresh at %s", formatTime(expires), formatTime(refreshAt))
}

// markSettled says nothing is on its way and nothing needs a person.
func markSettled(tr *v1.TokenRequest) {
	setCondition(tr, v1.ConditionReconciling, metav1.ConditionFalse, v1.ReasonUpToDate, "the token is up to date")
	setCondition(tr, v1.ConditionStalled, metav1.ConditionFalse, v1.ReasonUpToDate, "the token is up to date")
}

func clearFailure(tr *v1.TokenRequest) {
	tr.Status.FailedAttempts = 0
	tr.Status.LastFailureTime = nil
	tr.Status.LastFailureInputHash = ""
	tr.Status.LastFailureReason = ""
	tr.Status.NextRetryTime = nil
}

// markKept refreshes the status from a Secret that needs no change, such as
// after a restart, and clears a failure that no longer applies.
func markKept(tr *v1.TokenRequest, o observed, refreshAt time.Time) {
	st := &tr.Status
	s := o.secret
	st.SecretName = o.secretName
	st.ExpiresAt = metaTime(s.ExpiresAt)
	st.RefreshAt = metaTime(refreshAt)
	if st.LastRefreshTime == nil {
		st.LastRefreshTime = metaTime(s.IssuedAt)
	}
	clearFailure(tr)
	reason := v1.ReasonIssued
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
		reason = c.Reason
	}
	msg := validMessage(o, s.ExpiresAt, refreshAt)
	setCondition(tr, v1.ConditionReady, metav1.ConditionTrue, reason, msg)
	markSettled(tr)
}

// stalls says whether a reason needs a person rather than time: kstatus
// reads Stalled as a failure that waiting will not fix. A missing
// credential is not one: GitOps tools often create it a moment later.
func stalls(reason string) bool {
	switch reason {
	case v1.ReasonTokenServiceRejected, v1.ReasonInvalidSpec, v1.ReasonInvalidTemplate, v1.ReasonInvalidCredential,
		v1.ReasonCredentialNotAllowed, v1.ReasonSecretConflict, v1.ReasonIssuerNotAllowed, v1.ReasonScopeNotAllowed, v1.ReasonAudienceNotAllowed, v1.ReasonIssuerNotReady,
		v1.ReasonTokenTooLarge, v1.ReasonServiceAccountCredentialsDisabled, v1.ReasonRolloutRestartsDisabled, v1.ReasonPermissionDenied:
		return true
	}
	return false
}

// markProblem records why no new token could be written. Ready stays True
// while the Secret still holds a valid token for the current inputs.
func markProblem(tr *v1.TokenRequest, o observed, reason, message string) {
	settled, working := v1.ConditionReconciling, v1.ConditionStalled
	if !stalls(reason) {
		settled, working = working, settled
	}
	setCondition(tr, working, metav1.ConditionTrue, reason, message)
	setCondition(tr, settled, metav1.ConditionFalse, reason, "see "+working)
	tr.Status.LastFailureReason = reason
	if tr.Status.SecretName == "" {
		tr.Status.SecretName = o.secretName // moved only by a write, so a renamed output's former Secret is still known
	}
	switch healthOf(o) {
	case validToken:
		msg := fmt.Sprintf("token valid until %s; getting a new one failed: %s", formatTime(o.secret.ExpiresAt), message)
		readyReason := v1.ReasonIssued
		if c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
			readyReason = c.Reason
		}
		setCondition(tr, v1.ConditionReady, metav1.ConditionTrue, readyReason, msg)
	case expiredToken:
		msg := fmt.Sprintf("the token expired at %s: %s", formatTime(o.secret.ExpiresAt), message)
		setCondition(tr, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonExpired, msg)
	default:
		setCondition(tr, v1.ConditionReady, metav1.ConditionFalse, reason, message)
	}
}

// markFailedAttempt counts a failed call for backoff and records when it is
// tried again.
func markFailedAttempt(tr *v1.TokenRequest, now time.Time, inputHash string, retryAt time.Time) {
	tr.Status.FailedAttempts++
	tr.Status.LastFailureTime = metaTime(now)
	tr.Status.LastFailureInputHash = inputHash
	tr.Status.NextRetryTime = metaTime(retryAt)
}

// markLifetime raises the Warning condition while tokens live shorter than
// the propagation floor, and clears it otherwise. It reports a change.
func markLifetime(tr *v1.TokenRequest, lifetime, floor time.Duration) bool {
	before := meta.IsStatusConditionTrue(tr.Status.Conditions, v1.ConditionWarning)
	if lifetime > 0 && lifetime <= floor {
		setCondition(tr, v1.ConditionWarning, metav1.ConditionTrue, v1.ReasonShortLifetime, fmt.Sprintf(
			"tokens live %s, not longer than --min-remaining-lifetime (%s): pods may read a token that expires before kubelet updates the Secret, which takes up to a minute or more",
			lifetime, floor))
		return !before
	}
	meta.RemoveStatusCondition(&tr.Status.Conditions, v1.ConditionWarning)
	return false
}

func isReady(tr *v1.TokenRequest) bool {
	return meta.IsStatusConditionTrue(tr.Status.Conditions, v1.ConditionReady)
}

// problem is the condition (Reconciling or Stalled) that is True, or nil.
func problem(tr *v1.TokenRequest) *metav1.Condition {
	for _, typ := range []string{v1.ConditionStalled, v1.ConditionReconciling} {
		if c := meta.FindStatusCondition(tr.Status.Conditions, typ); c != nil && c.Status == metav1.ConditionTrue {
			return c
		}
	}
	return nil
}

// problemReason is the reason of the True Reconciling or Stalled condition, "" if none.
func problemReason(tr *v1.TokenRequest) string {
	if c := problem(tr); c != nil {
		return c.Reason
	}
	return ""
}

func problemMessage(tr *v1.TokenRequest) string {
	if c := problem(tr); c != nil {
		return c.Message
	}
	return ""
}
