//go:build linux

package hostile_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/awssts"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// restConfig reaches the test API server as an administrator; set by run.
var restConfig *rest.Config

func awsHostOf(u string) string {
	parsed, _ := url.Parse(u)
	return parsed.Host
}

// awsRequest asks for credentials of a role at endpoint with the
// namespace's "workload" ServiceAccount.
func awsRequest(ns, name, endpoint string) *v1.TokenRequest {
	return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.TokenRequestSpec{
		AWS:        &v1.AWSTarget{RoleARN: "arn:aws:iam::111122223333:role/" + ns, Endpoint: endpoint},
		Credential: &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}},
	}}
}

// awsEndpoints has a namespace editor point AWS TokenRequests at STS
// endpoints of its own, which its ServiceAccount consents to: one that
// never answers, one with a 1 GiB answer, one whose errors carry new codes,
// control characters and the web identity token it was sent; and one at a
// collector the ServiceAccount does not consent to, which must see nothing.
func awsEndpoints(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	var collected, echoed atomic.Int32
	collector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		collected.Add(1)
	}))
	t.Cleanup(collector.Close)
	echo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoed.Add(1)
		_ = r.ParseForm()
		code := "x_" + randomHex(8)
		hostile.codesMu.Lock()
		hostile.Codes = append(hostile.Codes, code)
		hostile.codesMu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>token %s refused&#10;second line %s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			code, r.PostForm.Get("WebIdentityToken"), strings.Repeat("m", 4000), strings.Repeat("r", 500))
	}))
	t.Cleanup(echo.Close)
	consent := strings.Join([]string{awsHostOf(hostile.Tarpit.URL), awsHostOf(hostile.Huge.URL), awsHostOf(echo.URL)}, ",")
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: consent}}})
	want := map[string]string{
		"aws-tarpit":    v1.ReasonTokenServiceUnavailable + "|" + v1.ReasonTokenCallsBusy,
		"aws-huge":      v1.ReasonTokenServiceUnavailable,
		"aws-echo":      v1.ReasonTokenServiceRejected,
		"aws-collector": v1.ReasonCredentialNotAllowed,
	}
	for name, endpoint := range map[string]string{"aws-tarpit": hostile.Tarpit.URL, "aws-huge": hostile.Huge.URL, "aws-echo": echo.URL, "aws-collector": collector.URL} {
		k8s.MustCreate(t, awsRequest(ns, name, endpoint))
	}
	t.Cleanup(func() {
		if n := collected.Load(); n != 0 {
			t.Errorf("the collector the ServiceAccount does not consent to got %d requests", n)
		}
		if echoed.Load() == 0 {
			t.Error("the echoing STS was never called")
		}
		if c := kube.Condition(k8s.GetTR(t, ns, "aws-echo"), v1.ConditionReady); !strings.Contains(c.Message, "token [redacted] refused") {
			t.Errorf("aws-echo: the STS error is not reported, scrubbed: %q", c.Message)
		}
		for name, reasons := range want {
			c := kube.Condition(k8s.GetTR(t, ns, name), v1.ConditionReady)
			t.Logf("%s: %s: %s", name, c.Reason, c.Message)
			if !strings.Contains(reasons, c.Reason) {
				t.Errorf("%s: %s, want %s: %s", name, c.Reason, reasons, c.Message)
			}
			if strings.Contains(c.Message, "eyJ") || strings.Contains(c.Message, "second line") {
				t.Errorf("%s: the message carries the token or the whole answer: %q", name, c.Message)
			}
		}
	})
	return ns, []string{"aws-tarpit", "aws-huge", "aws-echo", "aws-collector"}
}

// awsSTSFront is a proxy with the certificate the manager trusts in front of
// a test STS, which has a CA of its own.
func awsSTSFront(t *testing.T, srv *awssts.Server) string {
	t.Helper()
	upstream := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12}}}
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := upstream.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// A namespace editor forcing refreshes of AWS credentials in a loop gets
// at most one STS call per --min-refresh-interval, and the last request is
// still made within it.
func TestHostileAWSRefreshStormStaysWithinTheFloor(t *testing.T) {
	srv := awssts.New()
	t.Cleanup(srv.Close)
	ns := k8s.NewNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns}}
	k8s.MustCreate(t, sa)
	hc, err := rest.HTTPClientFor(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	issuer := serviceAccountIssuer(t, sa)
	srv.AddProvider(awssts.Provider{Issuer: issuer, Keys: awssts.DiscoveredKeys(issuer, hc)})
	tr := awsRequest(ns, "storm", awsSTSFront(t, srv))
	role := tr.Spec.AWS.RoleARN
	srv.AddRole(awssts.Role{ARN: role, Issuer: issuer, Audiences: []string{"sts.amazonaws.com"}, Subjects: []string{"system:serviceaccount:" + ns + ":workload"}})
	sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: awsHostOf(tr.Spec.AWS.Endpoint)}
	if err := k8s.Update(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	k8s.MustCreate(t, tr)
	issued := k8s.WaitReady(t, ns, "storm").Status.LastRefreshTime.Time
	time.Sleep(time.Until(issued.Add(minRefreshInterval + time.Second)))

	before := srv.AssumeCalls(role)
	for i := range 20 {
		k8s.UpdateTR(t, ns, "storm", func(tr *v1.TokenRequest) {
			tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: fmt.Sprintf("storm-%d", i)}
		})
		time.Sleep(500 * time.Millisecond)
	}
	lastWrite := time.Now()
	if n := srv.AssumeCalls(role) - before; n > 1 {
		t.Errorf("20 forced refreshes in 10 s made %d STS calls during them, want at most 1", n)
	}
	kube.Eventually(t, minRefreshInterval+5*time.Second, "the last refresh request to be made", func() bool {
		s := k8s.GetSecret(t, ns, "storm")
		return k8s.GetTR(t, ns, "storm").Status.LastRefreshRequestedAt == "storm-19" && s.Annotations[v1.AnnotationRefreshRequestedAt] == "storm-19"
	})
	if took := time.Since(lastWrite); took > minRefreshInterval+time.Second {
		t.Errorf("the last request was made %s after it was written, later than --min-refresh-interval (%s)", took, minRefreshInterval)
	}
	if n := srv.AssumeCalls(role) - before; n > 2 || n < 1 {
		t.Errorf("the storm made %d STS calls in all, want 1 or 2", n)
	}
	if s := k8s.GetSecret(t, ns, "storm"); string(s.Data["AWS_ACCESS_KEY_ID"]) != srv.Issued()[len(srv.Issued())-1].AccessKeyID {
		t.Error("the Secret does not hold the last credentials issued")
	}
	bystander(t)
}
