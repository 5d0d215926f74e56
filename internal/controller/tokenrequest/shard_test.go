package tokenrequest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

const shardLabel = "tokens.token-operator.io/shard"

// Two managers with disjoint --watch-label-selector values, the way Flux
// shards its controllers, serve every TokenRequest exactly once.
func TestTwoShardsServeEachOfAThousandTokenRequestsExactlyOnce(t *testing.T) {
	const n = 1000
	startManager(t, func(o *operator.Options) { o.WatchLabelSelector = "!" + shardLabel })
	startManager(t, func(o *operator.Options) { o.WatchLabelSelector = shardLabel + "=b" })
	ns := k8s.NewNamespace(t)

	clients := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				clientID, secret := app(t, 3600)
				clients[i] = clientID
				name := fmt.Sprintf("tr-%04d", i)
				credentialSecret(t, ns, name+"-cred", secret, sts.Host())
				tr := entraRequest(ns, name, clientID, name+"-cred")
				if i%2 == 1 {
					tr.Labels = map[string]string{shardLabel: "b"}
				}
				k8s.MustCreate(t, tr)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()

	kube.Eventually(t, 3*time.Minute, "every TokenRequest to be Ready", func() bool {
		var list v1.TokenRequestList
		if err := k8s.List(context.Background(), &list); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, tr := range list.Items {
			if tr.Namespace == ns && isTrue(tr.Status.Conditions, v1.ConditionReady) {
				ready++
			}
		}
		return ready == n
	})
	versions := map[string]string{}
	for i := range n {
		s := k8s.GetSecret(t, ns, fmt.Sprintf("tr-%04d", i))
		versions[s.Name] = s.ResourceVersion
	}
	time.Sleep(3 * time.Second) // room for a second shard's write that must not come
	for i, clientID := range clients {
		name := fmt.Sprintf("tr-%04d", i)
		if c := sts.TokenCalls(clientID); c != 1 {
			t.Errorf("%s: %d token calls, want 1", name, c)
		}
		if s := k8s.GetSecret(t, ns, name); s.ResourceVersion != versions[name] {
			t.Errorf("%s: the Secret was written again after Ready", name)
		}
	}
}

func isTrue(conds []metav1.Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}
