package tokenrequest_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestTheMetricsEndpointShowsTokensAndForgetsDeletedOnes(t *testing.T) {
	addr := freePort(t)
	startManager(t, func(o *operator.Options) { o.MetricsBindAddress = addr })
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "metered", clientID, "cred"))
	k8s.MustCreate(t, entraRequest(ns, "metered-too", clientID, "cred"))
	k8s.WaitReady(t, ns, "metered")
	k8s.WaitReady(t, ns, "metered-too")

	series := `{name="metered",namespace="` + ns + `"}`
	var text string
	kube.Eventually(t, 10*time.Second, "the token series", func() bool {
		text = scrape(t, addr)
		return strings.Contains(text, "token_operator_token_ready"+series+" 1")
	})
	for _, want := range []string{
		"token_operator_token_expiration_timestamp_seconds" + series,
		"token_operator_token_renewal_timestamp_seconds" + series,
		`token_operator_token_service_requests_total{issuer_host="` + sts.Host() + `",result="success"}`,
		`token_operator_token_service_request_duration_seconds_count{issuer_host="` + sts.Host() + `"}`,
		`token_operator_token_cache_requests_total{result="miss"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The second TokenRequest either joined the first one's call or found its token cached.
	if !strings.Contains(text, `token_operator_token_cache_requests_total{result="hit"}`) && !strings.Contains(text, `token_operator_token_cache_requests_total{result="shared"}`) {
		t.Errorf("the second TokenRequest did not use the shared cache")
	}

	if err := k8s.Delete(context.Background(), k8s.GetTR(t, ns, "metered")); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the deleted TokenRequest's series to go", func() bool {
		return !strings.Contains(scrape(t, addr), series)
	})
	if !strings.Contains(scrape(t, addr), `{name="metered-too",namespace="`+ns+`"}`) {
		t.Errorf("the other TokenRequest's series went too")
	}
}
