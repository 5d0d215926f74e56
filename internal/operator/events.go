package operator

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
)

// eventShare is the part of the client's rate that events may use.
const eventShare = 10

// newEventRecorder sends events through a client with a tenth of the
// main client's rate, so in a wave of new tokens the Secrets and statuses
// go first and the events follow. Events that outgrow the broadcaster's
// queue are dropped, as events are everywhere in Kubernetes; the status
// always holds the outcome. Recording stops when ctx ends.
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
	go func() {
		<-ctx.Done()
		b.Shutdown()
	}()
	return b.NewRecorder(scheme, "token-operator"), nil
}
