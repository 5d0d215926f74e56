//go:build linux

package scale_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// event is one watch event on an object the harness follows.
type event struct {
	at  time.Time
	key string // namespace/name
	typ watch.EventType
	// token is the access token an output Secret holds ("" for none, and
	// for TokenRequests).
	token string
}

// recorder keeps every watch event on the operator's output Secrets and on
// TokenRequests, with the time it arrived.
type recorder struct {
	mu      sync.Mutex
	secrets []event
	trs     []event
	// tokens is the current token of each output Secret.
	tokens map[string]string
	// withToken counts output Secrets that hold a token.
	withToken int
	// ready is whether each TokenRequest's Ready condition is True for its
	// current generation; readyNow counts those that are.
	ready    map[string]bool
	readyNow int
	changed  chan struct{}
	errs     []error
}

func newRecorder() *recorder {
	return &recorder{tokens: map[string]string{}, ready: map[string]bool{}, changed: make(chan struct{}, 1)}
}

// follow watches list (a SecretList or TokenRequestList) until ctx ends,
// watching again from the last resource version when the API server ends
// a watch.
func (r *recorder) follow(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.List(ctx, list, opts...); err != nil {
		return err
	}
	rv := list.(metav1.ListInterface).GetResourceVersion()
	go func() {
		for ctx.Err() == nil {
			all := append([]client.ListOption{&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}}}, opts...)
			w, err := c.Watch(ctx, list, all...)
			if err != nil {
				if ctx.Err() == nil {
					r.fail(err)
					time.Sleep(time.Second)
				}
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					r.fail(fmt.Errorf("watch error: %v", ev.Object))
					continue
				}
				obj, ok := ev.Object.(client.Object)
				if !ok {
					continue
				}
				rv = obj.GetResourceVersion()
				if ev.Type != watch.Bookmark {
					r.add(ev.Type, obj)
				}
			}
			w.Stop()
		}
	}()
	return nil
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) add(typ watch.EventType, obj client.Object) {
	e := event{at: time.Now(), key: obj.GetNamespace() + "/" + obj.GetName(), typ: typ}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.Secret:
		e.token = string(o.Data[v1.KeyAccessToken])
		if typ == watch.Deleted {
			e.token = ""
		}
		had := r.tokens[e.key] != ""
		r.tokens[e.key] = e.token
		if has := e.token != ""; has != had {
			if has {
				r.withToken++
			} else {
				r.withToken--
			}
		}
		r.secrets = append(r.secrets, e)
	case *v1.TokenRequest:
		now := typ != watch.Deleted && readyAtGeneration(o)
		if now != r.ready[e.key] {
			if now {
				r.readyNow++
			} else {
				r.readyNow--
			}
		}
		r.ready[e.key] = now
		r.trs = append(r.trs, e)
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// readyAtGeneration: Ready is True and was written for the TokenRequest's
// current generation, as the operator floor writes it.
func readyAtGeneration(tr *v1.TokenRequest) bool {
	c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == tr.Generation
}

// waitFor calls cond under the lock after every event until it holds or
// timeout passes.
func (r *recorder) waitFor(ctx context.Context, timeout time.Duration, cond func(r *recorder) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-r.changed:
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// mark is a position in the event logs.
type mark struct{ secrets, trs int }

func (r *recorder) mark() mark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return mark{len(r.secrets), len(r.trs)}
}

// since returns the Secret and TokenRequest events after m.
func (r *recorder) since(m mark) (secrets, trs []event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.secrets[m.secrets:]...), append([]event(nil), r.trs[m.trs:]...)
}

// lastEvent is when the latest event arrived.
func (r *recorder) lastEvent() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	if n := len(r.secrets); n > 0 {
		t = r.secrets[n-1].at
	}
	if n := len(r.trs); n > 0 && r.trs[n-1].at.After(t) {
		t = r.trs[n-1].at
	}
	return t
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}
