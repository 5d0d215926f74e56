package tokenrequest

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/renewal"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// observed is everything a decision depends on, gathered once per reconcile.
type observed struct {
	now        time.Time
	tr         *v1.TokenRequest
	secretName string
	// secret is the output Secret's bookkeeping; nil when the Secret is absent.
	secret *secretdata.State
	// foreign is true when a Secret of that name exists that the operator may not touch.
	foreign bool
	// tooLarge is true when that Secret holds more than the operator ever writes.
	tooLarge bool
	// inputHash identifies what would produce the token; empty when the credential failed.
	inputHash string
	// legacyInputHash is inputHash as operators before v2 of the hash wrote
	// it (a digest that includes credential material); it is compared, never
	// written, so that an upgrade re-mints nothing.
	legacyInputHash string
	// attemptHash is inputHash plus what else decides whether a call may
	// succeed (the allowed hosts): a failure is retried at once when it changes.
	attemptHash  string
	credentialOK bool
	policy       renewal.Policy
	// output is the output Secret as read; nil when absent.
	output *corev1.Secret
	// former is the Secret the status named before secretName changed, if
	// it still exists; nil otherwise.
	former *corev1.Secret
	// credErr says why the credential cannot be used (credentialOK false).
	credErr *resolve.Refusal
	// subjectExpires is when a token exchange's subject expires, when that
	// is known before the call (another TokenRequest's token); zero otherwise.
	subjectExpires time.Time
	// fetched is the token call's outcome, once a plan asked for it.
	fetched *fetched
	// retryNotBefore is a Retry-After the token service asked for, remembered in memory.
	retryNotBefore time.Time
	// from is where the token comes from: the spec or an issuer.
	from resolve.Source
	// clientID is the client the token is for (the issuer's with issuerRef).
	clientID string
}

type action int

const (
	actKeep            action = iota // the Secret is good: requeue at the refresh time
	actIssue                         // get a token and write the Secret
	actConflict                      // a foreign Secret is in the way
	actCredentialError               // the credential cannot be used; keep what is there
	actWaitRetry                     // a failed attempt is backing off
)

func (a action) String() string {
	return [...]string{"keep", "issue", "conflict", "credential-error", "wait-retry"}[a]
}

// Terminal failures (the token service refused the request) wait for a spec
// or credential change; without one they are tried again after 1, 2, 4 …
// minutes, at most hourly: identity providers are eventually consistent (a
// new client secret can be refused for a while), and an hourly try picks up
// a fix made at the token service without hammering it.
const (
	terminalRetryFirst = time.Minute
	terminalRetryMax   = time.Hour
)

// terminalDelay is the wait after the n-th terminal failure in a row,
// shortened by up to a tenth by a jitter stable for seed and n.
func terminalDelay(n int32, seed string) time.Duration {
	d := terminalRetryFirst
	for i := int32(1); i < n && d < terminalRetryMax; i++ {
		d *= 2
	}
	d = min(d, terminalRetryMax)
	return d - renewal.Jitter(seed, n, d/10)
}

// choose picks the action of a pass and why. It is pure: all it knows is in o.
func choose(o observed) plan {
	if o.foreign {
		return plan{action: actConflict, why: "a Secret of that name belongs to someone else"}
	}
	if !o.credentialOK {
		return plan{action: actCredentialError, why: "the credential cannot be used"}
	}
	p := issueReason(o)
	if p.action != actIssue {
		return p
	}
	if retryAt, waiting := backingOff(o, p); waiting {
		return plan{action: actWaitRetry, why: "backing off after a failed attempt", retryAt: retryAt, forcedAt: p.forcedAt}
	}
	return p
}

// issueReason says whether the Secret needs writing, and why.
func issueReason(o observed) plan {
	s := o.secret
	if s == nil || !s.HasToken {
		return plan{action: actIssue, why: "no token yet"}
	}
	if !o.now.Before(s.ExpiresAt) {
		return plan{action: actIssue, why: "the token expired"}
	}
	if !sameInputs(o) {
		return plan{action: actIssue, why: "the issuer, client, scopes, parameters or credential changed"}
	}
	if forcedRefresh(o.tr, s) {
		at := forcedRefreshAt(o)
		if !o.now.Before(at) {
			return plan{action: actIssue, why: "a refresh was requested", newer: true, forced: true}
		}
		p := dueReason(o) // the request waits; anything else due goes ahead
		p.forcedAt = at
		return p
	}
	return dueReason(o)
}

// dueReason says whether a valid token for the same inputs needs writing
// anyway, and why.
func dueReason(o observed) plan {
	s := o.secret
	if st := o.tr.Status; failedWithSameInputs(o.tr, o) && st.NextRetryTime != nil && st.LastFailureTime.After(s.IssuedAt) {
		// A failed attempt to replace this token (a forced refresh, say)
		// is retried when its backoff ends, not forgotten. A failure older
		// than the token is a stale read: that attempt has succeeded.
		return plan{action: actIssue, why: "a failed refresh is tried again", newer: true}
	}
	if !s.Intact || disagreesWithStatus(o.tr.Status, s) {
		return plan{action: actIssue, why: "the Secret's data or times were changed by hand"}
	}
	refreshAt := refreshTime(o, s.IssuedAt, s.ExpiresAt, s.RefreshHint)
	if !o.now.Before(refreshAt) {
		return plan{action: actIssue, why: "the refresh time has come", newer: true}
	}
	if s.TemplateHash != secretdata.TemplateHash(o.tr.Spec.SecretTemplate) {
		return plan{action: actIssue, why: "the secret template changed"}
	}
	return plan{action: actKeep, refreshAt: refreshAt}
}

// refreshTime is when a token is due. One exchanged for another
// TokenRequest's token and expiring with it is not due before it expires:
// exchanging the same subject again gives a token expiring no later (ever
// shorter ones, in a loop, while the subject cannot be refreshed), and a
// new subject token changes the inputs, which exchanges it at once.
func refreshTime(o observed, issued, expires, hint time.Time) time.Time {
	if !o.subjectExpires.IsZero() && !expires.Before(o.subjectExpires) {
		return expires
	}
	return renewal.RefreshTime(issued, expires, hint, o.policy)
}

// sameInputs: the Secret's token came from the current issuer, client,
// scopes, parameters and credential.
func sameInputs(o observed) bool {
	s := o.secret
	return s.InputHash == o.inputHash || (o.legacyInputHash != "" && s.InputHash == o.legacyInputHash)
}

// forcedRefresh: a refresh-requested-at value that neither the status nor
// the Secret records as done.
func forcedRefresh(tr *v1.TokenRequest, s *secretdata.State) bool {
	v := tr.Annotations[v1.AnnotationRefreshRequestedAt]
	return v != "" && v != tr.Status.LastRefreshRequestedAt && (s == nil || v != s.RefreshRequest)
}

// forcedRefreshAt is when a requested refresh may call the token service:
// at once, unless an earlier one called it within --min-refresh-interval.
// Requests that come sooner are merged into one, made when the interval
// ends, so that writing the annotation in a loop costs one call per
// interval, whether those calls succeed or fail.
func forcedRefreshAt(o observed) time.Time {
	last := o.tr.Status.LastForcedRefreshTime
	if last == nil {
		return time.Time{}
	}
	return last.Add(o.policy.MinInterval)
}

// backingOff holds back a new attempt after failures with the same inputs.
// A forced refresh and changed inputs go ahead at once.
func backingOff(o observed, p plan) (time.Time, bool) {
	st := o.tr.Status
	if p.forced || !failedWithSameInputs(o.tr, o) || st.LastFailureTime == nil {
		return time.Time{}, false
	}
	retryAt := st.LastFailureTime.Add(retryDelay(st))
	if st.NextRetryTime != nil {
		retryAt = st.NextRetryTime.Time // chosen with its jitter when the attempt failed
	}
	if o.retryNotBefore.After(retryAt) {
		retryAt = o.retryNotBefore
	}
	return retryAt, o.now.Before(retryAt)
}

// retryDelay is the wait after the last failure recorded in st.
func retryDelay(st v1.TokenRequestStatus) time.Duration {
	if terminalFailure(st) {
		return terminalDelay(st.FailedAttempts, "")
	}
	return renewal.Backoff(st.FailedAttempts, 0, "")
}

func terminalFailure(st v1.TokenRequestStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == v1.ConditionStalled {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// disagreesWithStatus: the Secret claims other times for the token the
// status recorded, such as an expiry moved by hand to stop refreshes.
func disagreesWithStatus(st v1.TokenRequestStatus, s *secretdata.State) bool {
	if st.LastRefreshTime == nil || st.ExpiresAt == nil {
		return false
	}
	sameToken := st.LastRefreshTime.Time.Equal(s.IssuedAt.Truncate(time.Second))
	return sameToken && !st.ExpiresAt.Time.Equal(s.ExpiresAt.Truncate(time.Second))
}

// failedWithSameInputs: the last attempt failed and nothing that could
// change its outcome has changed since.
func failedWithSameInputs(tr *v1.TokenRequest, o observed) bool {
	st := tr.Status
	return st.FailedAttempts > 0 && st.LastFailureInputHash == o.attemptHash
}

// pendingEvent is an event held back until the status it goes with is saved.
type pendingEvent struct{ eventType, reason, message string }

// plan is everything one pass does, decided without a client: act only
// carries it out. A plan with call set asks for a token first; decide then
// runs again with the answer in observed.fetched.
type plan struct {
	action action
	why    string
	// newer asks for a token newer than the one in the Secret (refresh due or forced).
	newer bool
	// forced is true when the refresh-requested-at annotation asked for this.
	forced bool
	// refreshAt is when the token in the Secret should be refreshed (actKeep).
	refreshAt time.Time
	// forcedAt is when a requested refresh that came too soon is made.
	forcedAt time.Time
	// retryAt is when a backing-off attempt may run (actWaitRetry).
	retryAt time.Time
	// call asks act to get a token and decide again.
	call bool

	// status is the whole status to save.
	status v1.TokenRequestStatus
	// write is the output Secret to create or update; nil when it is right.
	write *secretWrite
	// former is the Secret a renamed output leaves behind, and what to do with it.
	former       *corev1.Secret
	deleteFormer bool
	// restarts are the rollout restarts owed now.
	restarts []v1.RolloutRestartTarget
	events   []pendingEvent
	// requeueAt is when to look again; zero: only on a change.
	requeueAt time.Time
	// retryNotBefore is a Retry-After to remember for the next passes.
	retryNotBefore time.Time
	// written describes a token written, for the log.
	written *secretdata.Token
}

// secretWrite is the output Secret as it must be.
type secretWrite struct {
	secret *corev1.Secret
	// create is true when there is no Secret yet; replace names one to
	// delete first because a Secret's type cannot change.
	create  bool
	replace *corev1.Secret
}

// fetched is the outcome of the token call a plan asked for.
type fetched struct {
	token tokensource.Token
	err   error
	// noSlot: the namespace's call slots were all taken, or its call rate
	// used up, since busySince.
	noSlot    bool
	busySince time.Time
	// retryIn is when to try again without a slot, chosen by act with jitter.
	retryIn     time.Duration
	busyMessage string
}

func addEvent(ev *[]pendingEvent, eventType, reason, message string) {
	*ev = append(*ev, pendingEvent{eventType, reason, message})
}
