package tokenrequest

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func TestAReconcileWaitsWhileTheCacheStillServesTheVersionItsOwnStatusPatchReplaced(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC))
	r := &Reconciler{Clock: clk}
	nn := types.NamespacedName{Namespace: "team-a", Name: "api"}
	at := func(rv string) *v1.TokenRequest {
		return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name, ResourceVersion: rv}}
	}

	if r.cacheBehind(nn, at("10")) {
		t.Fatal("behind without any status patch")
	}
	r.replaced.Store(nn, replacedVersion{resourceVersion: "10", at: clk.Now()})
	if !r.cacheBehind(nn, at("10")) {
		t.Fatal("the cache serves the replaced version; want to wait")
	}
	if r.cacheBehind(nn, at("11")) {
		t.Fatal("the cache shows a newer version; want to go on")
	}
	if r.cacheBehind(nn, at("10")) {
		t.Fatal("once the cache has moved on, the record is gone")
	}

	r.replaced.Store(nn, replacedVersion{resourceVersion: "12", at: clk.Now()})
	clk.Step(cacheWaitLimit)
	if r.cacheBehind(nn, at("12")) {
		t.Fatalf("still waiting after %s; want to decide from the cache", cacheWaitLimit)
	}
}
