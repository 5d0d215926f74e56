package tokenrequest_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// problemReasons are the reason labels of token_operator_token_problem for
// one TokenRequest on the manager's registry.
func problemReasons(t *testing.T, ns, name string) []string {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, f := range families {
		if f.GetName() != "token_operator_token_problem" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns && labels["name"] == name && m.GetGauge().GetValue() == 1 {
				reasons = append(reasons, labels["reason"])
			}
		}
	}
	return reasons
}

// TestTheProblemMetricCarriesTheStalledReason: a TokenRequest the token
// service rejects shows token_operator_token_problem{reason=
// "TokenServiceRejected"}, which TokenOperatorTenantConfigErrors routes to
// the tenant; a healthy one shows none, and the series goes once fixed.
func TestTheProblemMetricCarriesTheStalledReason(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "good-cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "fine", clientID, "good-cred"))
	wrong := "wrong-" + randomHex(8)
	secretsUsed.Store(wrong, true)
	credentialSecret(t, ns, "cred", wrong, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "badclient", clientID, "cred"))

	k8s.WaitReason(t, ns, "badclient", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	kube.Eventually(t, 10*time.Second, "the problem series of the rejected TokenRequest", func() bool {
		r := problemReasons(t, ns, "badclient")
		return len(r) == 1 && r[0] == v1.ReasonTokenServiceRejected
	})
	k8s.WaitReady(t, ns, "fine")
	if r := problemReasons(t, ns, "fine"); len(r) != 0 {
		t.Errorf("a Ready TokenRequest without failures has problem series %v", r)
	}

	// The tenant fixes the credential: the series goes.
	k8s.UpdateTR(t, ns, "badclient", func(tr *v1.TokenRequest) {
		tr.Spec.Credential.ClientSecret.Name = "good-cred"
	})
	k8s.WaitReady(t, ns, "badclient")
	kube.Eventually(t, 10*time.Second, "the problem series to go after the fix", func() bool {
		return len(problemReasons(t, ns, "badclient")) == 0
	})
}
