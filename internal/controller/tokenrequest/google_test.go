package tokenrequest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/googlests"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

const googleSA = "orders@project-a.iam.gserviceaccount.com"

// googleCase is googlests trusting the test API server's service account
// tokens through a workload identity pool provider, and a Google service
// account the namespace's "workload" ServiceAccount may impersonate.
type googleCase struct {
	gs       *googlests.Server
	provider googlests.Provider
	ns       string
}

func newGoogleCase(t *testing.T) *googleCase {
	t.Helper()
	gs := googlests.New()
	t.Cleanup(gs.Close)
	// The package's last test looks for these in logs, events and status.
	t.Cleanup(func() {
		for _, tok := range gs.IssuedTokens() {
			secretsUsed.Store(tok, true)
		}
	})
	ns := k8s.NewNamespace(t)
	issuer, keys := apiServerIssuer(t)
	p := googlests.Provider{ProjectNumber: "123456789012", Pool: "clusters", Provider: "envtest", Issuer: issuer,
		Keys: googlests.StaticKeys(keys), SubjectCondition: "system:serviceaccount:" + ns + ":*"}
	gs.AddProvider(p)
	gs.AddServiceAccount(googlests.ServiceAccount{Email: googleSA, WorkloadIdentityUsers: []string{p.PrincipalFor("system:serviceaccount:" + ns + ":workload")}})
	return &googleCase{gs: gs, provider: p, ns: ns}
}

// start runs a manager that trusts googlests.
func (g *googleCase) start(t *testing.T, tweak ...func(*operator.Options)) func() {
	return startManager(t, append([]func(*operator.Options){func(o *operator.Options) { o.RootCAs = g.gs.CertPool() }}, tweak...)...)
}

// serviceAccount creates "workload", consenting to googlests' host or not.
func (g *googleCase) serviceAccount(t *testing.T, consent bool) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: g.ns}}
	if consent {
		sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: g.gs.Host()}
	}
	k8s.MustCreate(t, sa)
	return sa
}

func (g *googleCase) request(name, email string) *v1.TokenRequest {
	target := &v1.GoogleTarget{Audience: g.provider.Audience(), STSURL: g.gs.TokenURL()}
	if email != "" {
		target.ServiceAccountEmail, target.IAMCredentialsURL = email, g.gs.URL
	}
	return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.ns}, Spec: v1.TokenRequestSpec{
		Google: target, Credential: &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}}}
}

// whoami is the stand-in Google API's answer for a token, or the status.
func (g *googleCase) whoami(t *testing.T, client *http.Client) (googlests.WhoAmI, int) {
	t.Helper()
	resp, err := client.Get(g.gs.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w googlests.WhoAmI
	_ = json.NewDecoder(resp.Body).Decode(&w)
	return w, resp.StatusCode
}

// calls is the number of STS and IAM calls so far.
func (g *googleCase) calls() int {
	return g.gs.Calls(googlests.STS) + g.gs.Calls(googlests.GenerateAccessToken)
}

func TestAGoogleTokenIsWrittenOnlyWithConsentAndAGoogleClientUsesIt(t *testing.T) {
	g := newGoogleCase(t)
	g.start(t)
	sa := g.serviceAccount(t, false)
	k8s.MustCreate(t, g.request("gcp", googleSA))

	// Without consent nothing is sent, not even to STS.
	k8s.WaitReason(t, g.ns, "gcp", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	if n := g.calls(); n != 0 {
		t.Fatalf("%d calls without consent", n)
	}
	sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: g.gs.Host()}
	if err := k8s.Update(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	tr := k8s.WaitReady(t, g.ns, "gcp")
	s := k8s.GetSecret(t, g.ns, "gcp")
	if tt := string(s.Data[v1.KeyTokenType]); tt != "Bearer" || tr.Status.TokenType != "Bearer" {
		t.Errorf("token type %q, status %q", tt, tr.Status.TokenType)
	}
	if !slices.Equal(tr.Status.Scopes, []string{googlests.CloudPlatformScope}) {
		t.Errorf("status scopes %q", tr.Status.Scopes)
	}
	x := g.gs.LastExchange()
	if x["audience"] != g.provider.Audience() || x["subject_token_type"] != googlests.TokenTypeJWT {
		t.Errorf("exchange %v", x)
	}
	if s, i := g.gs.Calls(googlests.STS), g.gs.Calls(googlests.GenerateAccessToken); s != 1 || i != 1 {
		t.Errorf("calls: STS %d, generateAccessToken %d", s, i)
	}

	// A program using golang.org/x/oauth2/google's Credentials over what was
	// written reaches a Google API as the service account.
	expires, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
	if err != nil {
		t.Fatal(err)
	}
	creds := &google.Credentials{ProjectID: "project-a", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{
		AccessToken: string(s.Data[v1.KeyAccessToken]), TokenType: string(s.Data[v1.KeyTokenType]), Expiry: expires})}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, g.gs.Client())
	w, code := g.whoami(t, oauth2.NewClient(ctx, creds.TokenSource))
	if code != http.StatusOK || w.Principal != "serviceAccount:"+googleSA {
		t.Fatalf("whoami: %d %+v", code, w)
	}
	if left := time.Duration(w.ExpiresIn) * time.Second; time.Until(expires)-left > 5*time.Second || left-time.Until(expires) > 5*time.Second {
		t.Errorf("expires_at is %v away, Google says %v", time.Until(expires), left)
	}
}

// Google federated tokens can last minutes: the token is renewed before
// it expires, each time with a new exchange.
func TestAGoogleTokenIsRenewedBeforeItExpires(t *testing.T) {
	g := newGoogleCase(t)
	g.gs.SetLifetimes(6*time.Second, 0)
	g.gs.AcceptFederatedTokens(true)
	g.start(t)
	g.serviceAccount(t, true)
	k8s.MustCreate(t, g.request("federated", ""))
	k8s.WaitReady(t, g.ns, "federated")
	first := k8s.GetSecret(t, g.ns, "federated")
	firstExpiry, _ := time.Parse(time.RFC3339, string(first.Data[v1.KeyExpiresAt]))
	if life := time.Until(firstExpiry); life > 7*time.Second {
		t.Fatalf("expires_at %v away, want the 6 s STS granted", life)
	}
	var renewedAt time.Time
	kube.Eventually(t, 10*time.Second, "a new token", func() bool {
		s := k8s.GetSecret(t, g.ns, "federated")
		renewedAt = time.Now()
		return string(s.Data[v1.KeyAccessToken]) != string(first.Data[v1.KeyAccessToken])
	})
	if !renewedAt.Before(firstExpiry) {
		t.Errorf("renewed at %v, after the first token expired at %v", renewedAt, firstExpiry)
	}
	client := oauth2.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, g.gs.Client()),
		oauth2.StaticTokenSource(&oauth2.Token{AccessToken: string(k8s.GetSecret(t, g.ns, "federated").Data[v1.KeyAccessToken])}))
	if w, code := g.whoami(t, client); code != http.StatusOK || w.Principal != g.provider.PrincipalFor("system:serviceaccount:"+g.ns+":workload") {
		t.Fatalf("whoami: %d %+v", code, w)
	}
}

func TestARestartedOperatorMakesNoNewGoogleCall(t *testing.T) {
	g := newGoogleCase(t)
	stop := g.start(t)
	g.serviceAccount(t, true)
	k8s.MustCreate(t, g.request("gcp", googleSA))
	k8s.WaitReady(t, g.ns, "gcp")
	stop()
	calls := g.calls()
	secretVersion := k8s.GetSecret(t, g.ns, "gcp").ResourceVersion
	g.start(t)
	kube.Eventually(t, 20*time.Second, "the new manager to reconcile", func() bool {
		return reconciledSince(t, g.ns, []string{"gcp"})
	})
	time.Sleep(2 * time.Second)
	if got := g.calls(); got != calls {
		t.Errorf("the restart caused %d Google calls", got-calls)
	}
	if v := k8s.GetSecret(t, g.ns, "gcp").ResourceVersion; v != secretVersion {
		t.Error("the Secret was written after the restart")
	}
}

// During an outage the last good token stays until it expires, and no
// second, already expired token is ever written.
func TestAGoogleOutageKeepsTheLastGoodTokenUntilItExpires(t *testing.T) {
	g := newGoogleCase(t)
	g.gs.SetLifetimes(time.Hour, 8*time.Second)
	g.start(t)
	g.serviceAccount(t, true)
	k8s.MustCreate(t, g.request("gcp", googleSA))
	k8s.WaitReady(t, g.ns, "gcp")
	good := k8s.GetSecret(t, g.ns, "gcp")
	faults := make([]googlests.Fault, 200)
	for i := range faults {
		faults[i] = googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: http.StatusServiceUnavailable}
	}
	g.gs.InjectFaults(faults...)

	tr := k8s.WaitReason(t, g.ns, "gcp", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonExpired)
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !contains(msg, "UNAVAILABLE") || !contains(msg, "generateAccessToken") {
		t.Errorf("Expired message lacks the cause: %s", msg)
	}
	s := k8s.GetSecret(t, g.ns, "gcp")
	if string(s.Data[v1.KeyAccessToken]) != string(good.Data[v1.KeyAccessToken]) || string(s.Data[v1.KeyExpiresAt]) != string(good.Data[v1.KeyExpiresAt]) {
		t.Fatal("the Secret changed during the outage")
	}
	for _, tok := range g.gs.IssuedTokens() {
		if contains(msg(tr), tok) {
			t.Fatal("a token in the status")
		}
	}
}

func msg(tr *v1.TokenRequest) string {
	b, _ := json.Marshal(tr.Status)
	return string(b)
}

// Forced refreshes written in a loop cost one Google exchange per
// --min-refresh-interval, as for any token service.
func TestForcedGoogleRefreshesInALoopStayWithinTheFloor(t *testing.T) {
	const floor = 6 * time.Second
	g := newGoogleCase(t)
	g.start(t, func(o *operator.Options) { o.MinRefreshInterval = floor })
	g.serviceAccount(t, true)
	k8s.MustCreate(t, g.request("gcp", googleSA))
	issued := k8s.WaitReady(t, g.ns, "gcp").Status.LastRefreshTime.Time
	time.Sleep(time.Until(issued.Add(floor + time.Second)))
	before := g.gs.Calls(googlests.GenerateAccessToken)
	for i := range 10 {
		k8s.UpdateTR(t, g.ns, "gcp", func(tr *v1.TokenRequest) {
			tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: fmt.Sprintf("storm-%d", i)}
		})
		time.Sleep(400 * time.Millisecond)
	}
	if n := g.gs.Calls(googlests.GenerateAccessToken) - before; n > 1 {
		t.Errorf("10 forced refreshes in 4 s made %d impersonation calls during them, want at most 1", n)
	}
	kube.Eventually(t, floor+5*time.Second, "the last refresh request to be made", func() bool {
		return k8s.GetTR(t, g.ns, "gcp").Status.LastRefreshRequestedAt == "storm-9"
	})
	if n := g.gs.Calls(googlests.GenerateAccessToken) - before; n > 2 {
		t.Errorf("the storm made %d impersonation calls in all, want at most 2", n)
	}
}

// Through a TokenIssuer the issuer fixes the Google target and the
// ServiceAccount; its allowedScopes limit what TokenRequests ask for.
func TestAGoogleTokenThroughATokenIssuer(t *testing.T) {
	g := newGoogleCase(t)
	g.start(t)
	g.serviceAccount(t, true)
	target := g.request("", googleSA).Spec.Google
	k8s.MustCreate(t, &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "gcp", Namespace: g.ns}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
		Google: target, Credential: v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}},
		AllowedScopes: []string{"https://www.googleapis.com/auth/cloud-platform*"}}}})
	ref := func(name, scope string) *v1.TokenRequest {
		return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.ns}, Spec: v1.TokenRequestSpec{
			IssuerRef: &v1.IssuerReference{Name: "gcp"}, Scopes: []string{scope}}}
	}
	k8s.MustCreate(t, ref("read-only", "https://www.googleapis.com/auth/devstorage.read_only"))
	k8s.MustCreate(t, ref("platform", googlests.CloudPlatformScope))
	k8s.WaitReason(t, g.ns, "read-only", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonScopeNotAllowed)
	k8s.WaitReady(t, g.ns, "platform")
	client := oauth2.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, g.gs.Client()),
		oauth2.StaticTokenSource(&oauth2.Token{AccessToken: string(k8s.GetSecret(t, g.ns, "platform").Data[v1.KeyAccessToken])}))
	if w, code := g.whoami(t, client); code != http.StatusOK || w.Principal != "serviceAccount:"+googleSA {
		t.Fatalf("whoami: %d %+v", code, w)
	}
	if n := g.gs.Calls(googlests.GenerateAccessToken); n != 1 {
		t.Errorf("%d impersonation calls, want 1 (the refused scope makes none)", n)
	}
}
