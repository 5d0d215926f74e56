package operator

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/reference"
	"k8s.io/client-go/util/flowcontrol"
)

const (
	// eventShare is the part of the client's rate that events may use.
	eventShare = 10
	// eventQueue bounds the events waiting for their turn.
	eventQueue = 1000
)

// newEventRecorder sends events through a client with a tenth of the
// main client's rate, so in a wave of new tokens the Secrets and statuses
// go first and the events follow. Recording stops when ctx ends.
func newEventRecorder(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (events.EventRecorder, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS > 0 {
		cfg.QPS = max(cfg.QPS/eventShare, 5)
		cfg.Burst = max(cfg.Burst/eventShare, 10)
	}
	cs, err := eventsv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs})
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		return nil, err
	}
	q := &queuedRecorder{scheme: scheme, next: b.NewRecorder(scheme, "token-operator"), queue: make(chan queuedEvent, eventQueue)}
	var limiter flowcontrol.RateLimiter
	if cfg.QPS > 0 {
		limiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	go func() {
		q.run(ctx, limiter)
		b.Shutdown()
	}()
	return q, nil
}

// queuedRecorder hands events to the broadcaster no faster than the event
// client sends them. The broadcaster starts a goroutine per event, so
// without this a wave of ten thousand new tokens would hold ten thousand
// goroutines and events in memory while they wait for the rate limit.
// Events beyond the queue are dropped, as events are everywhere in
// Kubernetes; the status always holds the outcome.
type queuedRecorder struct {
	scheme *runtime.Scheme
	next   events.EventRecorder
	queue  chan queuedEvent
}

type queuedEvent struct {
	regarding, related              *corev1.ObjectReference
	eventType, reason, action, note string
}

var _ events.EventRecorder = &queuedRecorder{}

// Eventf queues the event with a reference taken now, so the object may
// change or go away before the event is sent.
func (q *queuedRecorder) Eventf(regarding, related runtime.Object, eventType, reason, action, note string, args ...any) {
	ref, err := reference.GetReference(q.scheme, regarding)
	if err != nil {
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		relatedRef, _ = reference.GetReference(q.scheme, related)
	}
	select {
	case q.queue <- queuedEvent{regarding: ref, related: relatedRef, eventType: eventType, reason: reason, action: action, note: fmt.Sprintf(note, args...)}:
	default:
	}
}

func (q *queuedRecorder) run(ctx context.Context, limiter flowcontrol.RateLimiter) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-q.queue:
			if limiter != nil && limiter.Wait(ctx) != nil {
				return
			}
			var related runtime.Object
			if e.related != nil {
				related = e.related
			}
			q.next.Eventf(e.regarding, related, e.eventType, e.reason, e.action, "%s", e.note)
		}
	}
}
