package tokenrequest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/renewal"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

var planNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func planRequest(name string) *v1.TokenRequest {
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: "uid-1", Generation: 1},
		Spec: v1.TokenRequestSpec{
			ClientID:              "client",
			RolloutRestartTargets: []v1.RolloutRestartTarget{{Kind: "Deployment", Name: "web"}},
		},
	}
}

func planObserved(tr *v1.TokenRequest) observed {
	return observed{now: planNow, tr: tr, secretName: index.OutputSecretName(tr), inputHash: "in", attemptHash: "attempt", credentialOK: true,
		policy: renewal.Policy{MinRemaining: 2 * time.Minute, MinInterval: 30 * time.Second, JitterSeed: tr.Namespace + "/" + tr.Name}}
}

func token(issued time.Time, hint time.Duration) tokensource.Token {
	t := tokensource.Token{AccessToken: "at-" + issued.Format(time.RFC3339), TokenType: "Bearer", IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
	if hint > 0 {
		t.RefreshAt = issued.Add(hint)
	}
	return t
}

// issue runs a pass that gets tok and returns its plan and the observed it
// came from.
func issue(t *testing.T, o observed, tok tokensource.Token) plan {
	t.Helper()
	o.fetched = &fetched{token: tok}
	p := decide(o)
	if p.action != actIssue || p.write == nil {
		t.Fatalf("no Secret written: action %s (%s)", p.action, p.why)
	}
	return p
}

// afterWrite is the observed of the next pass once p is carried out.
func afterWrite(o observed, p plan, now time.Time) observed {
	tr := o.tr.DeepCopy()
	tr.Status = p.status
	n := o
	n.tr, n.now, n.fetched = tr, now, nil
	s := p.write.secret.DeepCopy()
	n.output = s
	st := secretdata.Read(s)
	n.secret = &st
	return n
}

func TestPlan(t *testing.T) {
	issuedAt := planNow.Add(-10 * time.Minute)
	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"a kept token's Secret loses a refresh hint left by an earlier token", func(t *testing.T) {
			o := planObserved(planRequest("hinted"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			next := afterWrite(o, p, planNow)
			next.output.Annotations[secretdata.AnnotationRefreshHint] = formatTime(issuedAt.Add(-time.Hour))
			st := secretdata.Read(next.output)
			next.secret = &st
			q := decide(next)
			if q.action != actKeep || q.call {
				t.Fatalf("a stale hint made the token due: %s (%s)", q.action, q.why)
			}
			if q.write == nil || q.write.secret.Annotations[secretdata.AnnotationRefreshHint] != "" {
				t.Errorf("the stale hint stays on the Secret")
			}
		}},
		{"switching to Retain removes the owner reference without a token call", func(t *testing.T) {
			o := planObserved(planRequest("owned"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			if len(p.write.secret.OwnerReferences) != 1 || !*p.write.secret.OwnerReferences[0].Controller {
				t.Fatalf("Delete policy: owner references %v", p.write.secret.OwnerReferences)
			}
			next := afterWrite(o, p, planNow)
			next.tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
			q := decide(next)
			if q.call || q.write == nil || len(q.write.secret.OwnerReferences) != 0 {
				t.Errorf("call %v, write %v", q.call, q.write)
			}
		}},
		{"a pass with nothing to change writes nothing", func(t *testing.T) {
			o := planObserved(planRequest("quiet"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			q := decide(afterWrite(o, p, planNow))
			if q.call || q.write != nil || len(q.events) != 0 || q.former != nil {
				t.Errorf("call %v, write %v, events %v", q.call, q.write, q.events)
			}
		}},
		{"a 76-character name gets a short label and its full name in an annotation", func(t *testing.T) {
			name := strings.Repeat("a", 70) + "-token"
			o := planObserved(planRequest(name))
			s := issue(t, o, token(planNow, 0)).write.secret
			if l := s.Labels[v1.LabelTokenRequest]; len(l) > 63 || l == "" {
				t.Errorf("label %q", l)
			}
			if s.Annotations[v1.AnnotationTokenRequestName] != name || !managedBy(s, o.tr) {
				t.Errorf("the Secret does not name its TokenRequest")
			}
		}},
		{"template labels and annotations dropped from the spec are removed", func(t *testing.T) {
			tr := planRequest("templated")
			tr.Spec.SecretTemplate = &v1.SecretTemplate{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"owner": "a"}}
			o := planObserved(tr)
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			next := afterWrite(o, p, planNow)
			next.output.Labels["added-by-hand"] = "yes"
			next.tr.Spec.SecretTemplate = nil
			q := decide(next)
			if q.action != actIssue || !q.call {
				t.Fatalf("a template change should re-render: %s", q.action)
			}
			q = issueWithCache(t, next, q)
			s := q.write.secret
			if _, ok := s.Labels["team"]; ok || s.Annotations["owner"] != "" || s.Labels["added-by-hand"] != "yes" {
				t.Errorf("labels %v annotations %v", s.Labels, s.Annotations)
			}
		}},
		{"a renamed output deletes the former Secret under Delete once the new one holds a token", func(t *testing.T) {
			o := planObserved(planRequest("moved"))
			old := issue(t, o, token(planNow, 0))
			next := afterWrite(o, old, planNow)
			next.former, next.output, next.secret = next.output, nil, nil
			next.tr.Spec.SecretName = "moved-v2"
			next.secretName = "moved-v2"
			q := issueWithCache(t, next, decide(next))
			if q.former == nil || !q.deleteFormer || q.former.Name != "moved" {
				t.Errorf("former %v delete %v", q.former, q.deleteFormer)
			}
		}},
		{"a renamed output releases the former Secret under Retain", func(t *testing.T) {
			tr := planRequest("kept")
			tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
			o := planObserved(tr)
			old := issue(t, o, token(planNow, 0))
			next := afterWrite(o, old, planNow)
			next.former, next.output, next.secret = next.output, nil, nil
			next.tr.Spec.SecretName = "kept-v2"
			next.secretName = "kept-v2"
			q := issueWithCache(t, next, decide(next))
			if q.former == nil || q.deleteFormer || q.former.Labels[v1.LabelManagedBy] != "" || len(q.former.OwnerReferences) != 0 {
				t.Errorf("former %+v delete %v", q.former, q.deleteFormer)
			}
		}},
		{"a failure stores its jittered retry time and sends one event per reason, not per retry", func(t *testing.T) {
			o := planObserved(planRequest("failing"))
			o.fetched = &fetched{err: &tokensource.Error{Retryable: true, StatusCode: 503, Code: "temporarily_unavailable"}}
			p := decide(o)
			if p.status.NextRetryTime == nil || !p.status.NextRetryTime.After(planNow) || len(p.events) != 1 || p.status.LastFailureReason != v1.ReasonTokenServiceUnavailable {
				t.Fatalf("next retry %v, events %v, reason %q", p.status.NextRetryTime, p.events, p.status.LastFailureReason)
			}
			again := o
			again.tr = o.tr.DeepCopy()
			again.tr.Status = p.status
			again.now = p.status.NextRetryTime.Time
			if q := decide(again); len(q.events) != 0 {
				t.Errorf("a retry with the same failure sent events %v", q.events)
			}
		}},
		{"a terminal failure is retried after its backoff, not when the token expires", func(t *testing.T) {
			o := planObserved(planRequest("refused"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			next := afterWrite(o, p, issuedAt.Add(59*time.Minute+50*time.Second))
			next.fetched = &fetched{err: &tokensource.Error{StatusCode: 401, Code: "invalid_client"}}
			q := decide(next)
			expiry := issuedAt.Add(time.Hour)
			if !q.requeueAt.Equal(expiry) || !q.status.NextRetryTime.After(expiry) {
				t.Fatalf("requeue %v, next retry %v; want a look at expiry %v and a retry after it", q.requeueAt, q.status.NextRetryTime, expiry)
			}
			atExpiry := afterWrite(next, plan{status: q.status, write: &secretWrite{secret: next.output}}, expiry)
			if r := decide(atExpiry); r.action != actWaitRetry || r.call {
				t.Errorf("at expiry the terminal failure is tried again: %s (%s)", r.action, r.why)
			}
		}},
		{"a forced refresh that failed is tried again when its backoff ends", func(t *testing.T) {
			o := planObserved(planRequest("forced"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			next := afterWrite(o, p, planNow)
			next.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
			if q := decide(next); !q.call || !q.forced {
				t.Fatalf("the forced refresh asks for no token: %s", q.why)
			}
			next.fetched = &fetched{err: &tokensource.Error{Retryable: true, StatusCode: 503, Code: "temporarily_unavailable", CorrelationID: "a"}}
			failedPass := decide(next)
			retry := afterWrite(next, plan{status: failedPass.status, write: &secretWrite{secret: next.output}}, failedPass.status.NextRetryTime.Time)
			q := decide(retry)
			if !q.call || !q.newer {
				t.Fatalf("the failed forced refresh is not tried again: %s (%s)", q.action, q.why)
			}
			retry.fetched = &fetched{err: &tokensource.Error{Retryable: true, StatusCode: 503, Code: "temporarily_unavailable", CorrelationID: "b"}}
			if r := decide(retry); len(r.events) != 0 {
				t.Errorf("the same failure with a new correlation ID sent events %v", r.events)
			}
		}},
		{"a failure older than the token in the Secret is a stale read and calls nothing", func(t *testing.T) {
			o := planObserved(planRequest("recovered"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			next := afterWrite(o, p, planNow)
			lf, retry := metav1.NewTime(issuedAt.Add(-10*time.Second)), metav1.NewTime(issuedAt.Add(-5*time.Second))
			next.tr.Status.FailedAttempts, next.tr.Status.LastFailureTime, next.tr.Status.NextRetryTime = 1, &lf, &retry
			next.tr.Status.LastFailureInputHash = next.attemptHash
			if q := decide(next); q.call {
				t.Errorf("a stale failure caused a call: %s", q.why)
			}
		}},
		{"a Secret from an operator that hashed credential material is kept, its hash rewritten without a call", func(t *testing.T) {
			o := planObserved(planRequest("upgraded"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			next := afterWrite(o, p, planNow)
			next.output.Annotations[v1.AnnotationInputHash] = "legacy-digest"
			st := secretdata.Read(next.output)
			next.secret = &st
			next.legacyInputHash = "legacy-digest"
			q := decide(next)
			if q.call || q.write == nil || q.write.secret.Annotations[v1.AnnotationInputHash] != next.inputHash {
				t.Errorf("call %v (%s), write %v", q.call, q.why, q.write)
			}
		}},
		{"terminal failures of two TokenRequests are retried at different times", func(t *testing.T) {
			at := func(name string) time.Time {
				o := planObserved(planRequest(name))
				o.fetched = &fetched{err: &tokensource.Error{StatusCode: 401, Code: "invalid_client"}}
				return decide(o).status.NextRetryTime.Time
			}
			if a, b := at("one"), at("two"); a.Equal(b) {
				t.Errorf("both retry at %v", a)
			}
		}},
		{"a new token owes the rollout restarts and a kept one owes none", func(t *testing.T) {
			o := planObserved(planRequest("restarting"))
			o.now = issuedAt
			p := issue(t, o, token(issuedAt, 0))
			if len(p.restarts) != 1 || len(p.status.PendingRestarts) != 1 {
				t.Fatalf("restarts %v", p.restarts)
			}
			next := afterWrite(o, p, planNow)
			next.tr.Status.PendingRestarts = nil // done by act
			if q := decide(next); len(q.restarts) != 0 {
				t.Errorf("a kept token owes restarts %v", q.restarts)
			}
		}},
		{"a token shorter-lived than the propagation floor raises the Warning condition", func(t *testing.T) {
			o := planObserved(planRequest("brief"))
			tok := token(planNow, 0)
			tok.ExpiresAt = planNow.Add(time.Minute)
			p := issue(t, o, tok)
			if c := meta.FindStatusCondition(p.status.Conditions, v1.ConditionWarning); c == nil || c.Reason != v1.ReasonShortLifetime {
				t.Errorf("Warning %v", c)
			}
		}},
		{"a TokenRequest without a free call slot is requeued, and says so once the calls are slow", func(t *testing.T) {
			o := planObserved(planRequest("queued"))
			o.fetched = &fetched{noSlot: true, busySince: planNow.Add(-time.Second), retryIn: time.Second, busyMessage: "busy"}
			if p := decide(o); p.write != nil || problemReason(&v1.TokenRequest{Status: p.status}) != "" || !p.requeueAt.Equal(planNow.Add(time.Second)) {
				t.Errorf("a short wait changed the status or wrote: %+v", p.status.Conditions)
			}
			o.fetched.busySince = planNow.Add(-time.Minute)
			if p := decide(o); problemReason(&v1.TokenRequest{Status: p.status}) != v1.ReasonTokenCallsBusy {
				t.Errorf("a long wait is not reported: %+v", p.status.Conditions)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}
}

// issueWithCache completes a plan that asked for a token with the token in
// the Secret, as the shared cache would hand it out.
func issueWithCache(t *testing.T, o observed, p plan) plan {
	t.Helper()
	if !p.call {
		t.Fatalf("the plan asked for no token: %s (%s)", p.action, p.why)
	}
	tok := token(planNow, 0)
	if o.secret != nil && o.secret.HasToken {
		tok = tokensource.Token{AccessToken: string(o.output.Data[v1.KeyAccessToken]), TokenType: "Bearer", IssuedAt: o.secret.IssuedAt, ExpiresAt: o.secret.ExpiresAt}
	}
	o.fetched = &fetched{token: tok}
	q := decide(o)
	if q.write == nil {
		t.Fatalf("nothing written: %s", q.why)
	}
	return q
}

func TestForcedRefreshesWithinTheIntervalMergeIntoOneCallWhenItEnds(t *testing.T) {
	issuedAt := planNow.Add(-10 * time.Minute)
	o := planObserved(planRequest("storm"))
	o.now = issuedAt
	cur := afterWrite(o, issue(t, o, token(issuedAt, 0)), issuedAt.Add(time.Second))

	// The first request is made at once, however new the token.
	first := issuedAt.Add(time.Second)
	cur.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "r0"}
	p := decide(cur)
	if !p.call || !p.forced {
		t.Fatalf("the first forced refresh waits: %s (%s)", p.action, p.why)
	}
	cur.fetched = &fetched{token: token(first, 0)}
	cur = afterWrite(cur, decide(cur), first)

	due := first.Add(30 * time.Second)
	for i, at := range []time.Duration{time.Second, 10 * time.Second, 29 * time.Second} {
		cur.now = first.Add(at)
		cur.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: fmt.Sprintf("r%d", i+1)}
		p := decide(cur)
		if p.call || p.action != actKeep {
			t.Fatalf("request %d, %s after the first: %s (%s), want it deferred", i+1, at, p.action, p.why)
		}
		if got := p.status.NextForcedRefreshTime; got == nil || !got.Time.Equal(due) {
			t.Errorf("request %d: nextForcedRefreshTime %v, want %v", i+1, got, due)
		}
		if !p.requeueAt.Equal(due) {
			t.Errorf("request %d: requeued at %v, want %v", i+1, p.requeueAt, due)
		}
		if c := meta.FindStatusCondition(p.status.Conditions, v1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "requested refresh is made at "+formatTime(due)) {
			t.Errorf("request %d: Ready does not say when the refresh is made: %+v", i+1, c)
		}
		cur.tr.Status = p.status
	}

	cur.now = due
	p = decide(cur)
	if !p.call || !p.forced {
		t.Fatalf("at the end of the interval the merged request makes no call: %s (%s)", p.action, p.why)
	}
	cur.fetched = &fetched{token: token(due, 0)}
	p = decide(cur)
	if p.status.LastRefreshRequestedAt != "r3" || p.status.NextForcedRefreshTime != nil {
		t.Errorf("after the call: lastRefreshRequestedAt %q, nextForcedRefreshTime %v; want the last request, r3, done", p.status.LastRefreshRequestedAt, p.status.NextForcedRefreshTime)
	}
	next := afterWrite(cur, p, due.Add(5*time.Second))
	next.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "r4"}
	if q := decide(next); q.call || q.status.NextForcedRefreshTime == nil || !q.status.NextForcedRefreshTime.Time.Equal(due.Add(30*time.Second)) {
		t.Errorf("a request 5 s after the forced call: call %v, nextForcedRefreshTime %v; want it deferred to %v", q.call, q.status.NextForcedRefreshTime, due.Add(30*time.Second))
	}
}

func TestAForcedRefreshWaitsTheIntervalAfterAFailedForcedCallToo(t *testing.T) {
	issuedAt := planNow.Add(-10 * time.Minute)
	o := planObserved(planRequest("failing"))
	o.now = issuedAt
	cur := afterWrite(o, issue(t, o, token(issuedAt, 0)), planNow)
	cur.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "once"}
	if p := decide(cur); !p.call || !p.forced {
		t.Fatalf("the first forced refresh waits: %s (%s)", p.action, p.why)
	}
	cur.fetched = &fetched{err: &tokensource.Error{Code: "invalid_client"}} // terminal: its backoff outlasts the interval
	failed := decide(cur)
	if failed.status.LastForcedRefreshTime == nil || failed.status.FailedAttempts != 1 {
		t.Fatalf("the failed forced call is not recorded: %+v", failed.status)
	}
	cur.fetched, cur.tr.Status = nil, failed.status
	cur.now = planNow.Add(5 * time.Second)
	cur.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "again"}
	due := failed.status.LastForcedRefreshTime.Add(30 * time.Second)
	if p := decide(cur); p.call || !p.requeueAt.Equal(due) {
		t.Errorf("5 s after a failed forced call: call %v, requeue at %v; want no call before %v", p.call, p.requeueAt, due)
	}
	cur.now = due
	if p := decide(cur); !p.call || !p.forced {
		t.Errorf("30 s after a failed forced call the request is still held: %s (%s)", p.action, p.why)
	}
}
