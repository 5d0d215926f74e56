package tokenrequest_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func TestServiceAccountTokensForTheAPIServersAudiencesAreNeverMinted(t *testing.T) {
	issuer, keys := apiServerIssuer(t) // envtest's --service-account-issuer, https://127.0.0.1:<port>/
	startManager(t, func(o *operator.Options) {
		// The ceiling names API server audiences too: they are refused all the same.
		o.AllowedServiceAccountAudiences = []string{"api://AzureADTokenExchange", "https://kubernetes.default.svc", issuer, "api://tenant-*"}
	})
	ns := k8s.NewNamespace(t)
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}}})
	clientID := newClientID()
	sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":workload", Audience: issuer, Keys: keys,
	}}})

	minted := tokenRequestsServed(t)
	for name, c := range map[string]struct{ audience, says string }{
		// the issuer from the API server's discovery document: no fixed form names it
		"issuer": {issuer, "accepts"},
		// a usual form, refused even though the ceiling names it
		"default-svc": {"https://kubernetes.default.svc", "accepts"},
		"outside":     {"api://elsewhere", "--allowed-service-account-audiences"},
	} {
		tr := entraRequest(ns, name, clientID, "")
		tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: c.audience}}
		k8s.MustCreate(t, tr)
		got := k8s.WaitReason(t, ns, name, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
		if msg := kube.Condition(got, v1.ConditionReady).Message; !strings.Contains(msg, c.says) || !strings.Contains(msg, strconv.Quote(c.audience)) {
			t.Errorf("%s: message %q does not say %q about %q", name, msg, c.says, c.audience)
		}
		waitEvent(t, ns, name, v1.ReasonCredentialNotAllowed)
	}
	if n := tokenRequestsServed(t) - minted; n != 0 {
		t.Errorf("the API server minted %d service account tokens for refused audiences", n)
	}
	if n := sts.TokenCalls(clientID) + sts.FederatedTokenCalls(clientID); n != 0 {
		t.Errorf("%d token calls for refused audiences", n)
	}

	// A bystander in another namespace, on an allowed audience, gets its token.
	other := k8s.NewNamespace(t)
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: other,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}}})
	bystanderID := newClientID()
	sts.AddApp(entraserver.App{ClientID: bystanderID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: issuer, Subject: "system:serviceaccount:" + other + ":workload", Audience: "api://tenant-a", Keys: keys,
	}}})
	tr := entraRequest(other, "bystander", bystanderID, "")
	tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: "api://tenant-a"}}
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, other, "bystander")
	if n := sts.FederatedTokenCalls(bystanderID); n != 1 {
		t.Errorf("bystander: %d federated token calls, want 1", n)
	}
	if tokenRequestsServed(t) == minted {
		t.Error("the API server's count missed the bystander's token: it cannot show that none was minted")
	}
}

// tokenRequestsServed is the API server's count of serviceaccounts/token
// requests (apiserver_request_total), so that a test sees every token
// minted whoever asked.
func tokenRequestsServed(t *testing.T) int {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="serviceaccounts"`) || !strings.Contains(line, `subresource="token"`) {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		total += int(n)
	}
	return total
}
