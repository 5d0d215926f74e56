package operator

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	tokensv1alpha1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func TestEventsBeyondTheQueueAreDroppedAndTheRestArriveInOrder(t *testing.T) {
	sent := events.NewFakeRecorder(2 * eventQueue)
	q := &queuedRecorder{scheme: NewScheme(), next: sent, queue: make(chan queuedEvent, eventQueue)}
	for i := range eventQueue + 50 {
		tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprintf("tr-%d", i)}}
		q.Eventf(tr, nil, "Normal", "Issued", "Issued", "token %d", i)
	}
	if got := len(q.queue); got != eventQueue {
		t.Fatalf("%d events queued; want the queue's %d", got, eventQueue)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.run(ctx, nil)
	for i := range eventQueue {
		select {
		case e := <-sent.Events:
			if want := fmt.Sprintf("Normal Issued token %d", i); e != want {
				t.Fatalf("event %d is %q; want %q", i, e, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d events arrived", i)
		}
	}
	select {
	case e := <-sent.Events:
		t.Fatalf("an event beyond the queue arrived: %q", e)
	case <-time.After(100 * time.Millisecond):
	}
}
