package resolve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
)

func restConfigWithToken(token string) *rest.Config { return &rest.Config{BearerToken: token} }

func TestAudiencesTheAPIServerAcceptsAreRefused(t *testing.T) {
	discovered := []string{"https://127.0.0.1:6443/", "https://container.googleapis.com/v1/projects/p/locations/l/clusters/c"}
	for _, aud := range []string{
		"", " ",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		"https://kubernetes", "https://kubernetes.default", "https://kubernetes.default.svc", "https://kubernetes.default.svc.cluster.local",
		"https://kubernetes.default.svc/", "HTTPS://Kubernetes.Default.Svc", " kubernetes ",
		"https://127.0.0.1:6443/", "https://127.0.0.1:6443",
		"https://container.googleapis.com/v1/projects/p/locations/l/clusters/c",
	} {
		if why := audienceRefusal(aud, discovered, nil); why == "" {
			t.Errorf("audience %q allowed", aud)
		}
		if why := audienceRefusal(aud, discovered, []string{"*x", aud, "k*", "h*"}); why == "" {
			t.Errorf("audience %q allowed when the ceiling names it", aud)
		}
	}
	for _, aud := range []string{
		"api://AzureADTokenExchange", "sts.amazonaws.com", "https://iam.googleapis.com/projects/1/providers/p",
		"kubernetes.example.com", "https://kubernetes.default.svc.example", "https://127.0.0.1:6444/",
	} {
		if why := audienceRefusal(aud, discovered, nil); why != "" {
			t.Errorf("audience %q refused: %s", aud, why)
		}
	}
}

func TestTheAudienceCeilingAllowsExactAudiencesAndStarPrefixes(t *testing.T) {
	ceiling := []string{"api://AzureADTokenExchange", "https://iam.googleapis.com/projects/123/*"}
	for aud, want := range map[string]bool{
		"api://AzureADTokenExchange":                          true,
		"api://azureadtokenexchange":                          false, // exact
		"api://AzureADTokenExchange/":                         false,
		"https://iam.googleapis.com/projects/123/providers/p": true,
		"https://iam.googleapis.com/projects/1234/x":          false,
		"sts.amazonaws.com":                                   false,
	} {
		why := audienceRefusal(aud, nil, ceiling)
		if (why == "") != want {
			t.Errorf("audience %q: refusal %q, want allowed=%v", aud, why, want)
		}
		if !want && !strings.Contains(why, "--allowed-service-account-audiences") {
			t.Errorf("audience %q: refusal %q names no flag", aud, why)
		}
	}
}

func TestValidateAllowedAudiences(t *testing.T) {
	if err := ValidateAllowedAudiences([]string{"api://AzureADTokenExchange", "sts.amazonaws.com", "https://iam.googleapis.com/*"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "*", "a*b*", "*suffix", "with space", "tab\there"} {
		if err := ValidateAllowedAudiences([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAPIServerAudiencesAreDiscoveredOnceAndRetriedAfterAFailure(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	calls, fail := 0, true
	p := &ServiceAccountAudiences{Clock: clk, Discover: func(context.Context) ([]string, error) {
		calls++
		if fail {
			return nil, errors.New("forbidden")
		}
		return []string{"https://issuer.example/"}, nil
	}}
	ctx := context.Background()
	if why := p.refusal(ctx, "https://issuer.example/"); why != "" || calls != 1 {
		t.Fatalf("undiscovered issuer: refusal %q after %d discoveries", why, calls)
	}
	if why := p.refusal(ctx, "https://kubernetes.default.svc"); why == "" {
		t.Error("the usual form allowed while discovery fails")
	}
	fail = false
	clk.SetTime(clk.Now().Add(audienceRetry - time.Second))
	if p.refusal(ctx, "https://issuer.example/"); calls != 1 {
		t.Errorf("%d discoveries within %s of a failure, want 1", calls, audienceRetry)
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if why := p.refusal(ctx, "https://issuer.example/"); why == "" || calls != 2 {
		t.Errorf("after the retry: refusal %q after %d discoveries", why, calls)
	}
	for range 5 {
		p.refusal(ctx, "x")
	}
	if calls != 2 {
		t.Errorf("%d discoveries after a success, want 2", calls)
	}
	var none *ServiceAccountAudiences
	if none.refusal(ctx, "kubernetes") == "" || none.refusal(ctx, "api://AzureADTokenExchange") != "" {
		t.Error("a nil policy does not refuse exactly the usual forms")
	}
}

func TestOwnTokenAudiencesAreReadFromTheJWT(t *testing.T) {
	// {"aud":["https://kubernetes.default.svc.cluster.local","k3s"]} and {"aud":"one"}, unsigned.
	many := "e30.eyJhdWQiOlsiaHR0cHM6Ly9rdWJlcm5ldGVzLmRlZmF1bHQuc3ZjLmNsdXN0ZXIubG9jYWwiLCJrM3MiXX0.x"
	one := "e30.eyJhdWQiOiJvbmUifQ.x"
	if got := ownTokenAudiences(restConfigWithToken(many)); strings.Join(got, ",") != "https://kubernetes.default.svc.cluster.local,k3s" {
		t.Errorf("aud list: %q", got)
	}
	if got := ownTokenAudiences(restConfigWithToken(one)); strings.Join(got, ",") != "one" {
		t.Errorf("aud string: %q", got)
	}
	if got := ownTokenAudiences(restConfigWithToken("not-a-jwt")); got != nil {
		t.Errorf("opaque token: %q", got)
	}
}

func TestALongAudienceIsCutInTheMessage(t *testing.T) {
	long := "kubernetes.default.svc/" + strings.Repeat("é", 1000)
	why := audienceRefusal(long, nil, []string{"x"})
	if len(why) > 400 || !strings.Contains(why, "…") || !utf8.ValidString(why) {
		t.Errorf("message of %d bytes: %q", len(why), why)
	}
}
