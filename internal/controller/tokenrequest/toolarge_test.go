package tokenrequest

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/tokensource"
)

func TestClassifyTokenTooLargeAsTerminal(t *testing.T) {
	err := error(&tokensource.TokenTooLargeError{Size: 900 << 10, Max: 64 << 10})
	for _, e := range []error{err, resolve.Source{}.Explain(err, tokensource.Request{})} {
		reason, retryable, after := classify(e)
		if reason != v1.ReasonTokenTooLarge || retryable || after != 0 {
			t.Errorf("classify(%v) = %s, retryable %v, after %s", e, reason, retryable, after)
		}
	}
	if !stalls(v1.ReasonTokenTooLarge) {
		t.Error("TokenTooLarge does not stall: it would be retried with the short backoff")
	}
}

func TestATooLargeTokenIsWrittenNowhereAndBacksOff(t *testing.T) {
	large := &tokensource.TokenTooLargeError{Size: 900 << 10, Max: 64 << 10}
	t.Run("a first token", func(t *testing.T) {
		o := planObserved(planRequest("first"))
		o.fetched = &fetched{err: large}
		p := decide(o)
		if p.write != nil {
			t.Fatalf("a Secret was written: %s", p.why)
		}
		ready := meta.FindStatusCondition(p.status.Conditions, v1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1.ReasonTokenTooLarge || ready.Message != large.Error() {
			t.Fatalf("Ready: %+v", ready)
		}
		if p.status.NextRetryTime == nil || p.status.NextRetryTime.Time.Before(planNow.Add(50*time.Second)) {
			t.Errorf("next retry at %v: a terminal failure waits about a minute first", p.status.NextRetryTime)
		}
		if len(p.events) != 1 || p.events[0].reason != v1.ReasonTokenTooLarge {
			t.Errorf("events %+v", p.events)
		}
	})
	t.Run("a refresh keeps the last good token", func(t *testing.T) {
		issuedAt := planNow.Add(-40 * time.Minute)
		o := planObserved(planRequest("refresh"))
		o.now = issuedAt
		p := issue(t, o, token(issuedAt, 0))
		next := afterWrite(o, p, planNow)
		next.tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "now"}
		next.fetched = &fetched{err: large}
		q := decide(next)
		if q.write != nil && string(q.write.secret.Data[v1.KeyAccessToken]) != string(next.output.Data[v1.KeyAccessToken]) {
			t.Fatalf("the Secret's token was replaced")
		}
		stalled := meta.FindStatusCondition(q.status.Conditions, v1.ConditionStalled)
		ready := meta.FindStatusCondition(q.status.Conditions, v1.ConditionReady)
		if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != v1.ReasonTokenTooLarge || ready == nil || ready.Status != metav1.ConditionTrue {
			t.Fatalf("Stalled %+v, Ready %+v", stalled, ready)
		}
		// The next pass, a moment later, makes no call: no tight loop.
		again := afterWrite(next, plan{status: q.status, write: &secretWrite{secret: next.output}}, planNow.Add(5*time.Second))
		again.tr.Annotations = next.tr.Annotations
		if r := decide(again); r.call {
			t.Errorf("a pass 5 s later calls again: %s (%s)", r.action, r.why)
		}
	})
}
