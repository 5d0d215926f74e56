//go:build linux

package hostile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// cacheGrowthLimit bounds what Secrets a namespace dresses up as the
// operator's may add to the manager's own memory; kept whole, the 40 below
// would add over 36 MiB.
const cacheGrowthLimit = 12 << 20

// Labels, annotations and owner references are all a tenant's to write: the
// cache of the operator's own Secrets must not hold what they carry.
func TestSecretsDressedAsTheOperatorsCostItsCacheNothing(t *testing.T) {
	t.Run("40 Secrets of 900 KiB with the operator's labels", func(t *testing.T) {
		ns := k8s.NewNamespace(t)
		probe := readyProbe(t, ns)
		before := settledRSS(t)
		for i := range 40 {
			k8s.MustCreate(t, dressedSecret(ns, fmt.Sprintf("borrowed-%d", i), "nobody", 900<<10))
		}
		probe.seenAfter(t)
		growthStaysUnder(t, before, cacheGrowthLimit)
		bystander(t)
	})

	t.Run("20 Secrets of 900 KiB crafted as the outputs of 20 TokenRequests", func(t *testing.T) {
		ns := k8s.NewNamespace(t)
		probe := readyProbe(t, ns)
		clientID, secret := entraApp(t)
		credentialSecret(t, ns, "cred", secret, sts.Host())
		before := settledRSS(t)
		for i := range 20 {
			name := fmt.Sprintf("crafted-%d", i)
			k8s.MustCreate(t, dressedSecret(ns, name, name, 900<<10))
		}
		// Seen first, as they would be in a running cluster: a TokenRequest
		// created in the same instant can be decided before its Secret is.
		probe.seenAfter(t)
		for i := range 20 {
			name := fmt.Sprintf("crafted-%d", i)
			k8s.MustCreate(t, entraRequest(ns, name, clientID, "cred"))
		}
		for i := range 20 {
			tr := waitReason(t, ns, fmt.Sprintf("crafted-%d", i), []string{v1.ReasonSecretConflict}, 30*time.Second)
			if msg := kube.Condition(tr, v1.ConditionReady).Message; !strings.Contains(msg, "more data than this operator ever writes") {
				t.Errorf("crafted-%d: conflict message %q does not say why", i, msg)
			}
		}
		growthStaysUnder(t, before, cacheGrowthLimit)
		if n := sts.TokenCalls(clientID); n != 0 {
			t.Errorf("%d token calls for TokenRequests whose Secrets are taken", n)
		}
		for i := range 20 {
			if s := k8s.GetSecret(t, ns, fmt.Sprintf("crafted-%d", i)); len(s.Data[v1.KeyAccessToken]) != 900<<10 {
				t.Fatalf("crafted-%d was overwritten", i)
			}
		}
		bystander(t)
	})
}

// dressedSecret carries the operator's label and annotations naming
// tokenRequest, and dataBytes of data.
func dressedSecret(ns, name, tokenRequest string, dataBytes int) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelTokenRequest: tokenRequest},
			Annotations: map[string]string{v1.AnnotationTokenRequestName: tokenRequest},
		},
		Data: map[string][]byte{v1.KeyAccessToken: []byte(strings.Repeat("x", dataBytes))},
	}
}

// probe is a TokenRequest whose output Secret, edited by hand, the operator
// repairs: the repair comes through the same watch as every Secret created
// before the edit, so once it is seen the manager has seen them all.
type probe struct{ ns, token string }

func readyProbe(t *testing.T, ns string) probe {
	t.Helper()
	clientID, secret := entraApp(t)
	credentialSecret(t, ns, "probe-cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "probe", clientID, "probe-cred"))
	waitReady(t, ns, "probe")
	return probe{ns: ns, token: string(k8s.GetSecret(t, ns, "probe").Data[v1.KeyAccessToken])}
}

func (p probe) seenAfter(t *testing.T) {
	t.Helper()
	s := k8s.GetSecret(t, p.ns, "probe")
	s.Data[v1.KeyAccessToken] = []byte("edited by hand")
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 30*time.Second, "the probe's Secret repaired", func() bool {
		return string(k8s.GetSecret(t, p.ns, "probe").Data[v1.KeyAccessToken]) != "edited by hand"
	})
}

func waitReady(t *testing.T, ns, name string) {
	t.Helper()
	kube.Eventually(t, 20*time.Second, ns+"/"+name+" Ready", func() bool {
		c := kube.Condition(k8s.GetTR(t, ns, name), v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue
	})
}

// settledRSS is the manager's own memory (RssAnon) once it stops falling,
// so that garbage of earlier steps is not counted as growth here.
func settledRSS(t *testing.T) int64 {
	t.Helper()
	low := int64(1 << 62)
	for range 10 {
		rss, err := mgr.RSSAnon()
		if err != nil {
			t.Fatal(err)
		}
		if rss >= low {
			break
		}
		low = rss
		time.Sleep(500 * time.Millisecond)
	}
	return low
}

// growthStaysUnder requires the manager's own memory to come back within
// limit of before: decoding each Secret costs memory for a moment, keeping
// it costs it for good. It waits up to 30 s for the collector and the
// scavenger to return what was only passing through.
func growthStaysUnder(t *testing.T, before, limit int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rss, err := mgr.RSSAnon()
		if err != nil {
			t.Fatal(err)
		}
		if rss-before < limit {
			t.Logf("manager memory: %d MiB before, %d MiB after (growth %d MiB)", before>>20, rss>>20, (rss-before)>>20)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager memory grew by %d MiB (from %d MiB), more than %d MiB", (rss-before)>>20, before>>20, limit>>20)
		}
		time.Sleep(time.Second)
	}
}
