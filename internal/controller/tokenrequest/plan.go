package tokenrequest

import (
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/renewal"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// decide is the whole decision of a pass. It is pure: all it knows is in o.
func decide(o observed) plan {
	p := choose(o)
	if p.action == actIssue && o.fetched == nil {
		p.call = true
		return p
	}
	tr := o.tr.DeepCopy()
	tr.Status.ObservedGeneration = tr.Generation
	tr.Status.NextForcedRefreshTime = metaTime(p.forcedAt) // a token written clears it
	ev := &p.events
	switch p.action {
	case actConflict:
		settleConflict(tr, o, ev)
	case actCredentialError:
		settleCredentialError(tr, o, ev)
		p.requeueAt = expiryIfValid(o)
		if o.credErr != nil && o.credErr.Reason == v1.ReasonPermissionDenied {
			// A right granted later changes nothing the operator watches.
			p.requeueAt = earliest(p.requeueAt, o.now.Add(permissionRecheck))
		}
		if o.credErr != nil && o.credErr.Reason == v1.ReasonSubjectTokenNotReady {
			// Its Secret is watched; this only backs the watch up.
			p.requeueAt = earliest(p.requeueAt, o.now.Add(subjectRecheck))
		}
	case actWaitRetry:
		markProblem(tr, o, problemReasonOr(tr, v1.ReasonRefreshFailed), problemMessage(tr))
		p.requeueAt = earliest(earliest(p.retryAt, expiryIfValid(o)), p.forcedAt)
	case actKeep:
		settleKeep(tr, o, &p)
	case actIssue:
		settleIssue(tr, o, &p)
	}
	if p.action != actConflict {
		p.former, p.deleteFormer = formerSecret(tr, o)
	}
	p.restarts = owedRestarts(tr)
	tr.Status.PendingRestarts = p.restarts
	p.status = tr.Status
	return p
}

// permissionRecheck is how often a credential the API server refused to
// let the operator read (403) is tried again.
const permissionRecheck = 5 * time.Minute

// subjectRecheck is how often a token exchange whose subject TokenRequest
// has no token yet looks again without a watch event.
const subjectRecheck = time.Minute

func settleConflict(tr *v1.TokenRequest, o observed, ev *[]pendingEvent) {
	msg := fmt.Sprintf("Secret %q exists and is not managed by this TokenRequest; delete it, choose another spec.secretName, or annotate it with %s=true to let the operator take it over", o.secretName, v1.AnnotationAllowAdoption)
	if o.tooLarge {
		msg = fmt.Sprintf("Secret %q holds more data than this operator ever writes, so it is not taken for this TokenRequest's and is left as it is; delete it or choose another spec.secretName", o.secretName)
	}
	if problemReason(tr) != v1.ReasonSecretConflict {
		addEvent(ev, corev1.EventTypeWarning, v1.ReasonSecretConflict, msg)
	}
	markProblem(tr, o, v1.ReasonSecretConflict, msg)
}

func settleCredentialError(tr *v1.TokenRequest, o observed, ev *[]pendingEvent) {
	ce := o.credErr
	if ce == nil {
		ce = &resolve.Refusal{Reason: v1.ReasonInvalidSpec, Message: "the credential cannot be used"}
	}
	if problemReason(tr) != ce.Reason || problemMessage(tr) != ce.Message {
		addEvent(ev, corev1.EventTypeWarning, ce.Reason, ce.Message)
	}
	markProblem(tr, o, ce.Reason, ce.Message)
}

// settleKeep leaves a good token in place, brings the status in line with
// it, and the Secret's metadata with the spec.
func settleKeep(tr *v1.TokenRequest, o observed, p *plan) {
	p.requeueAt = earliest(p.refreshAt, p.forcedAt)
	if !o.subjectExpires.IsZero() && p.refreshAt.Equal(o.secret.ExpiresAt) {
		// Refreshed when its subject is: this backs up the watch on the subject's Secret.
		p.requeueAt = earliest(p.requeueAt, o.now.Add(subjectRecheck))
	}
	if failedWithSameInputs(tr, o) {
		// Nothing new to write, but the failure stands until a call succeeds.
		markProblem(tr, o, problemReasonOr(tr, v1.ReasonRefreshFailed), problemMessage(tr))
	} else {
		markKept(tr, o, p.refreshAt)
		if !p.forcedAt.IsZero() {
			c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady)
			c.Message += fmt.Sprintf("; the requested refresh is made at %s, --min-refresh-interval after the last forced refresh", formatTime(p.forcedAt))
		}
		if v := tr.Annotations[v1.AnnotationRefreshRequestedAt]; v != "" && v == o.secret.RefreshRequest {
			tr.Status.LastRefreshRequestedAt = v // done by an earlier write the cache had not shown yet
		}
	}
	p.write = convergedSecret(tr, o, p.refreshAt)
}

// convergedSecret is the output Secret with its token and data as they are
// and everything else as the spec wants: owner reference per
// deletionPolicy, labels, bookkeeping without stale entries, nothing a
// dropped template key left behind. Nil when nothing differs.
func convergedSecret(tr *v1.TokenRequest, o observed, refreshAt time.Time) *secretWrite {
	s := o.output
	if s == nil || o.secret == nil || !o.secret.HasToken {
		return nil
	}
	hint := o.secret.RefreshHint
	if !hint.After(o.secret.IssuedAt) {
		hint = time.Time{} // stale: it came with an earlier token
	}
	rendered, err := secretdata.Render(secretdata.Input{
		TokenRequestName: tr.Name, ClientID: o.clientID, Template: tr.Spec.SecretTemplate,
		InputHash: o.inputHash, RefreshRequest: o.secret.RefreshRequest,
		Token: secretdata.Token{
			AccessToken: string(s.Data[v1.KeyAccessToken]), TokenType: string(s.Data[v1.KeyTokenType]), Scopes: tr.Status.Scopes,
			IssuedAt: o.secret.IssuedAt, ExpiresAt: o.secret.ExpiresAt, RefreshAt: refreshAt, RefreshHint: hint,
			AWS: writtenAWS(tr, s),
		},
	})
	if err != nil {
		return nil // the template is reported when the next token is written
	}
	// The data is intact and rendered from this template already: keep it as it is.
	rendered.Type, rendered.Data = s.Type, s.Data
	rendered.Annotations[secretdata.AnnotationDataHash] = s.Annotations[secretdata.AnnotationDataHash]
	return desiredSecret(tr, o, rendered)
}

// writtenAWS reads back the AWS credentials of s when the TokenRequest's
// token is AWS credentials; nil otherwise.
func writtenAWS(tr *v1.TokenRequest, s *corev1.Secret) *secretdata.AWSKeys {
	if tr.Status.TokenType != tokensource.TokenTypeAWS {
		return nil
	}
	return secretdata.ReadAWS(s.Data)
}

// desiredSecret applies rendered and the owner reference to (a copy of) the
// output Secret; nil when that changes nothing.
func desiredSecret(tr *v1.TokenRequest, o observed, rendered secretdata.Rendered) *secretWrite {
	w := &secretWrite{}
	s := o.output
	if s != nil && s.Type != "" && s.Type != rendered.Type {
		w.replace, s = s, nil // the type of a Secret cannot change
	}
	if s == nil {
		w.create = true
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tr.Namespace, Name: o.secretName}}
	} else {
		s = s.DeepCopy()
	}
	changed := secretdata.Apply(s, rendered)
	changed = setOwner(tr, s) || changed
	if !changed && !w.create {
		return nil
	}
	w.secret = s
	return w
}

// setOwner makes the TokenRequest the Secret's controller under the Delete
// policy, so that deleting the TokenRequest deletes the Secret, and removes
// that reference under Retain. It reports a change.
func setOwner(tr *v1.TokenRequest, s *corev1.Secret) bool {
	i := slices.IndexFunc(s.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == tr.UID })
	retain := tr.Spec.DeletionPolicy == v1.DeletionPolicyRetain
	switch {
	case retain && i >= 0:
		s.OwnerReferences = slices.Delete(slices.Clone(s.OwnerReferences), i, i+1)
		return true
	case !retain && i < 0:
		s.OwnerReferences = append(s.OwnerReferences, *metav1.NewControllerRef(tr, v1.GroupVersion.WithKind("TokenRequest")))
		return true
	}
	return false
}

// settleIssue turns the token call's outcome into the Secret, the status
// and the events.
func settleIssue(tr *v1.TokenRequest, o observed, p *plan) {
	f := o.fetched
	if f.noSlot {
		if o.now.Sub(f.busySince) > tokensource.SlowCalls {
			markProblem(tr, o, v1.ReasonTokenCallsBusy, f.busyMessage)
		}
		p.requeueAt = o.now.Add(f.retryIn)
		return
	}
	if p.forced {
		tr.Status.LastRefreshRequestedAt = tr.Annotations[v1.AnnotationRefreshRequestedAt]
		tr.Status.LastForcedRefreshTime = metaTime(o.now)
	}
	if f.err != nil {
		settleFailure(tr, o, p, f.err)
		return
	}
	// Times as the Secret stores them, so that a later read (or a new
	// process) computes the very same refresh time.
	tok := f.token
	t := secretdata.Token{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, Scopes: tok.Scopes,
		IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt.Truncate(time.Second), RefreshHint: tok.RefreshAt.Truncate(time.Second),
	}
	if k := tok.AWS; k != nil {
		t.AWS = &secretdata.AWSKeys{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken}
	}
	t.RefreshAt = refreshTime(o, t.IssuedAt, t.ExpiresAt, t.RefreshHint)
	rendered, err := secretdata.Render(secretdata.Input{TokenRequestName: tr.Name, ClientID: o.clientID, Template: tr.Spec.SecretTemplate, InputHash: o.inputHash,
		RefreshRequest: tr.Annotations[v1.AnnotationRefreshRequestedAt], Token: t})
	if err != nil {
		// Only the render limits (output, work, scopes) refuse here; their text holds no value.
		markProblem(tr, o, v1.ReasonInvalidTemplate, err.Error())
		return
	}
	p.write = desiredSecret(tr, o, rendered)
	p.written = &t
	newToken := o.output == nil || o.secret == nil || !o.secret.HasToken || !o.secret.IssuedAt.Equal(t.IssuedAt) ||
		string(o.output.Data[v1.KeyAccessToken]) != tok.AccessToken ||
		t.AWS != nil && string(o.output.Data[secretdata.KeyAWSAccessKeyID]) != t.AWS.AccessKeyID
	announce(tr, o, t, newToken, &p.events)
	p.requeueAt = t.RefreshAt
}

// announce records a written token in status and events, and owes the
// rollout restarts of a new token.
func announce(tr *v1.TokenRequest, o observed, t secretdata.Token, newToken bool, ev *[]pendingEvent) {
	recovering := tr.Status.FailedAttempts > 0 || problemReason(tr) != ""
	reason := v1.ReasonRefreshed
	if tr.Status.LastRefreshTime == nil {
		reason = v1.ReasonIssued
	}
	if !newToken {
		reason = readyReasonOr(tr, v1.ReasonIssued)
	}
	markIssued(tr, o, t, reason)
	if newToken {
		addEvent(ev, corev1.EventTypeNormal, reason, fmt.Sprintf("wrote a new token into Secret %q, valid until %s%s", o.secretName, formatTime(t.ExpiresAt), o.from.Via()))
		// Owed until done, and recorded so that an operator restart never repeats them.
		tr.Status.PendingRestarts = slices.Clone(tr.Spec.RolloutRestartTargets)
		if markLifetime(tr, t.ExpiresAt.Sub(t.IssuedAt), o.policy.MinRemaining) {
			addEvent(ev, corev1.EventTypeWarning, v1.ReasonShortLifetime, meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionWarning).Message)
		}
	}
	if recovering {
		addEvent(ev, corev1.EventTypeNormal, v1.ReasonRecovered, fmt.Sprintf("Secret %q holds a valid token again", o.secretName))
	}
}

// settleFailure records a failed attempt and when to try again, with its
// jitter; the last good token stays in place.
func settleFailure(tr *v1.TokenRequest, o observed, p *plan, err error) {
	reason, retryable, retryAfter := classify(err)
	retryAfter = capRetryAfter(retryAfter, o)
	msg := err.Error()
	var ce *resolve.Refusal
	if errors.As(err, &ce) {
		msg = ce.Message
	}
	if problemReason(tr) != reason {
		// On a change of reason only: the text of each retry differs (a new correlation ID).
		addEvent(&p.events, corev1.EventTypeWarning, reason, msg)
	}
	seed := o.policy.JitterSeed
	delay := terminalDelay(tr.Status.FailedAttempts+1, seed)
	if retryable {
		delay = renewal.Backoff(tr.Status.FailedAttempts+1, retryAfter, seed)
		if retryAfter > 0 {
			p.retryNotBefore = o.now.Add(retryAfter)
		}
	}
	retryAt := o.now.Add(delay)
	markFailedAttempt(tr, o.now, o.attemptHash, retryAt)
	markProblem(tr, o, reason, msg)
	p.requeueAt = earliest(retryAt, expiryIfValid(o)) // and turn Ready to Expired on time
}

// formerSecret is the Secret the status named before secretName changed,
// once the new Secret holds a valid token: deleted under Delete, released
// under Retain.
func formerSecret(tr *v1.TokenRequest, o observed) (*corev1.Secret, bool) {
	old := o.former
	if old == nil || !managedBy(old, tr) || !isReady(tr) || tr.Status.SecretName != o.secretName {
		return nil, false
	}
	if tr.Spec.DeletionPolicy != v1.DeletionPolicyRetain {
		return old, true
	}
	released := old.DeepCopy()
	released.OwnerReferences = slices.DeleteFunc(released.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == tr.UID })
	delete(released.Labels, v1.LabelManagedBy)
	delete(released.Labels, v1.LabelTokenRequest)
	delete(released.Annotations, v1.AnnotationTokenRequestName)
	return released, false
}

// owedRestarts are the restarts still owed that the spec still asks for.
func owedRestarts(tr *v1.TokenRequest) []v1.RolloutRestartTarget {
	if tr.Status.LastRefreshTime == nil {
		return nil
	}
	owed := slices.DeleteFunc(slices.Clone(tr.Status.PendingRestarts), func(t v1.RolloutRestartTarget) bool {
		return !slices.Contains(tr.Spec.RolloutRestartTargets, t)
	})
	if len(owed) == 0 {
		return nil
	}
	return owed
}

// classify maps a token error to a condition reason and a retry class.
func classify(err error) (reason string, retryable bool, retryAfter time.Duration) {
	var te *tokensource.Error
	var refused *tokensource.HostNotAllowedError
	var cfg *tokensource.ConfigError
	var ce *resolve.Refusal
	var large *tokensource.TokenTooLargeError
	switch {
	case errors.As(err, &large):
		return v1.ReasonTokenTooLarge, false, 0
	case errors.As(err, &te):
		if te.Retryable {
			return v1.ReasonTokenServiceUnavailable, true, te.RetryAfter
		}
		return v1.ReasonTokenServiceRejected, false, 0
	case errors.As(err, &refused):
		return v1.ReasonCredentialNotAllowed, false, 0
	case errors.As(err, &ce):
		return ce.Reason, false, 0
	case errors.As(err, &cfg):
		return v1.ReasonInvalidSpec, false, 0
	}
	return v1.ReasonTokenServiceUnavailable, true, 0
}

// capRetryAfter keeps a token service's Retry-After from outlasting a
// third of the remaining validity of the token in the Secret: the service
// chooses the value, and honouring it blindly would let the token expire.
func capRetryAfter(d time.Duration, o observed) time.Duration {
	if until := expiryIfValid(o); !until.IsZero() {
		d = min(d, until.Sub(o.now)/3)
	}
	return max(d, 0)
}

// expiryIfValid is when the Secret's token expires, if it is still valid, so
// the status can turn to Expired on time.
func expiryIfValid(o observed) time.Time {
	if o.secret != nil && o.secret.HasToken && o.now.Before(o.secret.ExpiresAt) {
		return o.secret.ExpiresAt
	}
	return time.Time{}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func problemReasonOr(tr *v1.TokenRequest, def string) string {
	if r := problemReason(tr); r != "" {
		return r
	}
	return def
}

func readyReasonOr(tr *v1.TokenRequest, def string) string {
	if isReady(tr) {
		for _, c := range tr.Status.Conditions {
			if c.Type == v1.ConditionReady {
				return c.Reason
			}
		}
	}
	return def
}
