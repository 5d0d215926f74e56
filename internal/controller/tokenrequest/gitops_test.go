package tokenrequest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// kstatusOf computes what Flux and kpt see: kstatus on the object as the API
// server serves it.
func kstatusOf(t *testing.T, ns, name string) *status.Result {
	t.Helper()
	return kstatusOfKind(t, "TokenRequest", ns, name)
}

func kstatusOfKind(t *testing.T, kind, ns, name string) *status.Result {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind(kind))
	if err := env.Client.Get(context.Background(), objectKey(ns, name), u); err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func waitKstatus(t *testing.T, ns, name string, want status.Status) *status.Result {
	t.Helper()
	var res *status.Result
	kube.Eventually(t, 20*time.Second, name+" to be "+want.String()+" for kstatus", func() bool {
		res = kstatusOf(t, ns, name)
		return res.Status == want
	})
	return res
}

func TestKstatusReadsReadyAsCurrentATerminalFailureAsFailedAndAFirstIssueAsInProgress(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)

	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "ready", clientID, "cred"))
	k8s.WaitReady(t, ns, "ready")
	waitKstatus(t, ns, "ready", status.CurrentStatus)

	// invalid_client needs a person: Stalled, which kstatus reads as Failed.
	refusedID, _ := app(t, 3600)
	credentialSecret(t, ns, "wrong", "not-the-secret-"+randomHex(4), sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "refused", refusedID, "wrong"))
	res := waitKstatus(t, ns, "refused", status.FailedStatus)
	if !strings.Contains(res.Message, "invalid_client") {
		t.Errorf("kstatus message %q does not give the reason", res.Message)
	}

	// A first token waiting for its credential is on its way: InProgress.
	pendingID, pendingSecret := app(t, 3600)
	k8s.MustCreate(t, entraRequest(ns, "first", pendingID, "later"))
	waitKstatus(t, ns, "first", status.InProgressStatus)
	credentialSecret(t, ns, "later", pendingSecret, sts.Host())
	k8s.WaitReady(t, ns, "first")
	waitKstatus(t, ns, "first", status.CurrentStatus)

	// A transient failure of the first issue is InProgress too, not Failed.
	flakyID, flakySecret := app(t, 3600)
	for range 5 {
		sts.InjectFaults(entraserver.Fault{ClientID: flakyID, Status: 503})
	}
	credentialSecret(t, ns, "flaky-cred", flakySecret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "flaky", flakyID, "flaky-cred"))
	k8s.WaitReason(t, ns, "flaky", v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonTokenServiceUnavailable)
	waitKstatus(t, ns, "flaky", status.InProgressStatus)
}

// kubectl get asks the API server for a Table; these are its cells.
func TestKubectlGetShowsAbsoluteTimesAndTheFailingReason(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "listed", clientID, "cred"))
	tr := k8s.WaitReady(t, ns, "listed")

	cfg := rest.CopyConfig(env.Config)
	cfg.GroupVersion = &v1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rc.Get().Namespace(ns).Resource("tokenrequests").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Param("includeObject", "None").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	cells := map[string]any{}
	var wide []string
	for i, c := range table.ColumnDefinitions {
		cells[c.Name] = table.Rows[0].Cells[i]
		if c.Priority > 0 {
			wide = append(wide, c.Name)
		}
	}
	for name, v := range cells {
		if s, _ := v.(string); strings.Contains(s, "invalid") {
			t.Errorf("column %s shows %q", name, s)
		}
	}
	if cells["Ready"] != "True" || cells["Secret"] != "listed" || cells["Reason"] != v1.ReasonIssued {
		t.Errorf("cells %v", cells)
	}
	if want := tr.Status.ExpiresAt.UTC().Format(time.RFC3339); cells["Expires"] != want {
		t.Errorf("Expires shows %v, want the absolute time %s", cells["Expires"], want)
	}
	for _, col := range []string{"Refresh", "Failing", "Next Retry"} {
		if !contains(strings.Join(wide, ","), col) {
			t.Errorf("kubectl get -o wide lacks %s (wide columns: %v)", col, wide)
		}
	}
}

// Before the operator has looked at a TokenRequest, kstatus must not read it
// as Current, or a GitOps wait would pass before any token exists.
func TestANewTokenRequestIsInProgressBeforeTheOperatorSeesIt(t *testing.T) {
	ns := k8s.NewNamespace(t) // no manager runs in this test
	k8s.MustCreate(t, entraRequest(ns, "unseen", newClientID(), "cred"))
	if res := kstatusOf(t, ns, "unseen"); res.Status != status.InProgressStatus {
		t.Errorf("kstatus of an unseen TokenRequest: %s (%s), want InProgress", res.Status, res.Message)
	}
}
