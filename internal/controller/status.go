package controller

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
	case o.credentialOK && s.InputHash != o.inputHash:
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
func markIssued(tr *v1.TokenRequest, tok secretdata.Token, secretName, reason string) {
	st := &tr.Status
	st.SecretName = secretName
	st.TokenType = tok.TokenType
	st.Scopes = tok.Scopes
	st.ExpiresAt = metaTime(tok.ExpiresAt)
	st.RefreshAt = metaTime(tok.RefreshAt)
	st.LastRefreshTime = metaTime(tok.IssuedAt)
	clearFailure(tr)
	msg := fmt.Sprintf("token valid until %s, refresh at %s", formatTime(tok.ExpiresAt), formatTime(tok.RefreshAt))
	setCondition(tr, v1.ConditionReady, metav1.ConditionTrue, reason, msg)
	setCondition(tr, v1.ConditionIssuing, metav1.ConditionFalse, reason, "the token is up to date")
}

func clearFailure(tr *v1.TokenRequest) {
	tr.Status.FailedAttempts = 0
	tr.Status.LastFailureTime = nil
	tr.Status.LastFailureInputHash = ""
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
	msg := fmt.Sprintf("token valid until %s, refresh at %s", formatTime(s.ExpiresAt), formatTime(refreshAt))
	setCondition(tr, v1.ConditionReady, metav1.ConditionTrue, reason, msg)
	setCondition(tr, v1.ConditionIssuing, metav1.ConditionFalse, reason, "the token is up to date")
}

// markProblem records why no new token could be written. Ready stays True
// while the Secret still holds a valid token for the current inputs.
func markProblem(tr *v1.TokenRequest, o observed, reason, message string) {
	setCondition(tr, v1.ConditionIssuing, metav1.ConditionTrue, reason, message)
	tr.Status.SecretName = o.secretName
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

// markFailedAttempt counts a failed call for backoff.
func markFailedAttempt(tr *v1.TokenRequest, now time.Time, inputHash string) {
	tr.Status.FailedAttempts++
	tr.Status.LastFailureTime = metaTime(now)
	tr.Status.LastFailureInputHash = inputHash
}

func isReady(tr *v1.TokenRequest) bool {
	return meta.IsStatusConditionTrue(tr.Status.Conditions, v1.ConditionReady)
}

// issuingReason is the reason of the Issuing condition, "" if none.
func issuingReason(tr *v1.TokenRequest) string {
	if c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionIssuing); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}

func issuingMessage(tr *v1.TokenRequest) string {
	if c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionIssuing); c != nil {
		return c.Message
	}
	return ""
}
