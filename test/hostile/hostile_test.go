//go:build linux

package hostile_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// bystanderWait is how long a TokenRequest in an unrelated namespace may
// take to get its token while the hostile ones are at work.
const bystanderWait = 5 * time.Second

// peakRSSLimit bounds the manager's resident memory through every attack;
// one oversized answer read whole would pass it several times over.
const peakRSSLimit = 300 << 20

// secretsUsed are every client secret the tests hand out, for leak checks.
var secretsUsed []string

// One manager serves every namespace below. Each step adds hostile
// TokenRequests, which stay while later steps run, and then checks that a
// fresh TokenRequest in another namespace gets its token promptly.
func TestHostileNamespacesCannotStallReadOrBloatTheOperator(t *testing.T) {
	steps := []struct {
		name    string
		attack  func(t *testing.T) (ns string, names []string)
		reasons []string
		message *regexp.Regexp
		wait    time.Duration
	}{
		{"never-ending and value-probing templates are refused", templateBombs, []string{v1.ReasonInvalidTemplate},
			regexp.MustCompile(`secretTemplate`), 20 * time.Second},
		{"a token service that never answers holds no more than its namespace's call slots", tarpit, []string{v1.ReasonTokenServiceUnavailable, v1.ReasonTokenCallsBusy},
			regexp.MustCompile(`no answer within|token calls have been under way`), 30 * time.Second},
		{"1 GiB answers and a gzip bomb are cut off at the cap", oversized, []string{v1.ReasonTokenServiceUnavailable},
			regexp.MustCompile(`larger than`), 40 * time.Second},
		{"random error codes stay out of metric labels", randomCodes, []string{v1.ReasonTokenServiceRejected},
			regexp.MustCompile(`token service answered 400`), 30 * time.Second},
		{"a plain-http loopback service needs the operator's opt-in", plainLoopback, []string{v1.ReasonInvalidSpec},
			regexp.MustCompile(`--insecure-allow-http-loopback`), 20 * time.Second},
		{"access tokens over --max-token-bytes are written nowhere", hugeTokens, []string{v1.ReasonTokenTooLarge}, regexp.MustCompile(`--max-token-bytes`), 30 * time.Second},
		{"scopes smuggled past allowedScopes never reach the token service", smuggledScopes, []string{v1.ReasonInvalidSpec}, regexp.MustCompile(`RFC 6749 scope-token`), 20 * time.Second},
		{"a credential reserved for an issuer cannot be used inline or by another issuer", reservedCredential, []string{v1.ReasonCredentialNotAllowed},
			regexp.MustCompile(`reserved-for for TokenIssuer/team;`), 20 * time.Second},
		{"service account tokens for the API server's own audiences are never minted", apiServerAudiences, []string{v1.ReasonCredentialNotAllowed},
			regexp.MustCompile(`Kubernetes API server accepts|empty service account token audience`), 20 * time.Second},
		{"AWS STS endpoints of a namespace's own are capped, timed out, scrubbed, and consented to", awsEndpoints, []string{v1.ReasonTokenServiceUnavailable, v1.ReasonTokenCallsBusy, v1.ReasonTokenServiceRejected, v1.ReasonCredentialNotAllowed}, regexp.MustCompile(`no answer within|token calls have been under way|larger than|token service answered 400|does not allow`), 40 * time.Second},
		{"token exchange sends no service account token without its consent or for the API server", exchangeSubjects, []string{v1.ReasonCredentialNotAllowed}, regexp.MustCompile(`ServiceAccount "honest" does not allow|Kubernetes API server accepts`), 20 * time.Second},
		{"a namespace cannot widen a cluster issuer's exchange audiences or resources", widenedAudiences, []string{v1.ReasonAudienceNotAllowed}, regexp.MustCompile(`does not allow the (audience|resource)`), 20 * time.Second},
		{"google targets leak no echoed token, follow no redirect and call no IAM host without consent", googleTargets, googleReasons, regexp.MustCompile(`\[redacted\]|redirect|does not allow`), googleWait},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ns, names := step.attack(t)
			bystander(t)
			for _, name := range names {
				tr := waitReason(t, ns, name, step.reasons, step.wait)
				msg := kube.Condition(tr, v1.ConditionReady).Message
				if !step.message.MatchString(msg) {
					t.Errorf("%s/%s: message %q does not match %q", ns, name, msg, step.message)
				}
				if strings.ContainsAny(msg, "\n\r\a") || len(msg) > 1024 {
					t.Errorf("%s/%s: message is not a short single line: %q", ns, name, msg)
				}
			}
			bystander(t)
		})
	}

	t.Run("server-chosen error codes never became label values", func(t *testing.T) {
		text, err := mgr.scrape(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		codes := hostile.codes()
		if len(codes) < 7 {
			t.Fatalf("only %d error answers were sent; the step above did not run", len(codes))
		}
		for _, c := range codes {
			if strings.Contains(text, c) {
				t.Errorf("error code %q chosen by the token service is on /metrics", c)
			}
		}
		allowed := map[string]bool{"success": true, "other": true, "invalid_request": true, "invalid_client": true, "invalid_grant": true,
			"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true, "invalid_target": true, "temporarily_unavailable": true,
			"server_error": true, "access_denied": true, "network": true, "timeout": true, "malformed_response": true,
			"credential_unavailable": true, "host_not_allowed": true, "error": true, "redirect": true, "response_too_large": true, "token_too_large": true}
		for _, m := range regexp.MustCompile(`token_operator_token_service_requests_total\{[^}]*result="([^"]*)"`).FindAllStringSubmatch(text, -1) {
			if !allowed[m[1]] {
				t.Errorf("result label %q is not one of the fixed values", m[1])
			}
		}
	})

	t.Run("peak memory stayed bounded", func(t *testing.T) {
		rss, err := mgr.peakRSS()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("manager peak RSS: %d MiB", rss>>20)
		if rss > peakRSSLimit {
			t.Errorf("manager peak RSS %d MiB is above %d MiB", rss>>20, peakRSSLimit>>20)
		}
	})

	t.Run("no token or client secret in logs, status or events", func(t *testing.T) {
		noLeaks(t)
	})
}

// templateBombs: 8 templates that never end and one that probes the token
// byte by byte through error text.
func templateBombs(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	clientID, secret := entraApp(t)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	bombs := []string{
		`{{range 9000000000000000000}}{{end}}x`,
		`{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`,
		`{{printf "%999999999d" 1}}`,
		`{{range $i := 9000000000000000000}}{{range $.Scopes}}{{end}}{{end}}`,
		`{{block "b" .}}{{template "b" .}}{{end}}`,
		`{{range .Scopes}}{{range $.Scopes}}{{range $.Scopes}}{{end}}{{end}}{{end}}`,
		`{{call .AccessToken}}`,
		`{{slice .AccessToken 0 99999999}}`,
		`{{ if eq (len .AccessToken) 55 }}{{ index .Scopes (index .AccessToken 7) }}{{ end }}`,
	}
	var names []string
	for i, b := range bombs {
		name := fmt.Sprintf("bomb-%d", i)
		tr := entraRequest(ns, name, clientID, "cred")
		tr.Spec.SecretTemplate = &v1.SecretTemplate{Data: map[string]string{"value": b}}
		k8s.MustCreate(t, tr)
		names = append(names, name)
	}
	return ns, names
}

// tarpit: more TokenRequests than the manager has workers on a token
// service that accepts and never answers. Never more than the namespace's
// call slots may be under way, and the others say they are waiting.
func tarpit(t *testing.T) (string, []string) {
	ns, names := genericRequests(t, 2*managerWorkers, "tarpit", hostile.Tarpit.URL+"/token")
	t.Cleanup(func() {
		if peak := hostile.tarpitPeak.Load(); peak > callSlotsPerNamespace || peak == 0 {
			t.Errorf("the tarpit held %d calls at once, want 1 to %d (--max-token-calls-per-namespace)", peak, callSlotsPerNamespace)
		}
	})
	kube.Eventually(t, 30*time.Second, "a tarpit TokenRequest to report "+v1.ReasonTokenCallsBusy, func() bool {
		for _, name := range names {
			if c := kube.Condition(k8s.GetTR(t, ns, name), v1.ConditionReconciling); c != nil && c.Reason == v1.ReasonTokenCallsBusy {
				return true
			}
		}
		return false
	})
	// Calls time out after 10 s without headers; wait for the slots to
	// change hands twice.
	kube.Eventually(t, 45*time.Second, "three rounds of tarpit calls", func() bool {
		return hostile.tarpitCalls.Load() >= 3*callSlotsPerNamespace
	})
	return ns, names
}

// oversized: 1 GiB answers on the generic path (token and discovery), a
// gzip bomb, and 1 GiB from an Entra authority, read through MSAL.
func oversized(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	credentialSecret(t, ns, "huge", "client-secret-"+randomHex(8), host(hostile.Huge.URL))
	credentialSecret(t, ns, "bomb", "client-secret-"+randomHex(8), host(hostile.GzipBomb.URL))
	k8s.MustCreate(t, genericRequest(ns, "huge-token", "huge", func(s *v1.TokenRequestSpec) { s.TokenURL = hostile.Huge.URL + "/token" }))
	k8s.MustCreate(t, genericRequest(ns, "huge-discovery", "huge", func(s *v1.TokenRequestSpec) { s.IssuerURL = hostile.Huge.URL + "/issuer" }))
	k8s.MustCreate(t, genericRequest(ns, "gzip-bomb", "bomb", func(s *v1.TokenRequestSpec) { s.TokenURL = hostile.GzipBomb.URL + "/token" }))
	k8s.MustCreate(t, genericRequest(ns, "huge-entra", "huge", func(s *v1.TokenRequestSpec) {
		s.Authority = hostile.Huge.URL + "/contoso"
		s.Scopes = []string{"api://" + s.ClientID + "/.default"}
	}))
	return ns, []string{"huge-token", "huge-discovery", "gzip-bomb", "huge-entra"}
}

// randomCodes: 7 clients refused with a fresh random error code each time.
func randomCodes(t *testing.T) (string, []string) {
	return genericRequests(t, 7, "codes", hostile.RandomCodes.URL+"/token")
}

// plainLoopback aims a credential at a plain-http service on the
// operator's own loopback, which the manager runs without opting in.
func plainLoopback(t *testing.T) (string, []string) {
	ns, names := genericRequests(t, 1, "plain", hostile.PlainHTTP.URL+"/quitquitquit")
	t.Cleanup(func() {
		if n := hostile.PlainHTTPCalls.Load(); n != 0 {
			t.Errorf("the plain-http loopback service received %d requests", n)
		}
	})
	return ns, names
}

// genericRequests creates n TokenRequests for tokenURL, each with its own
// client and Secret, in a new namespace.
func genericRequests(t *testing.T, n int, prefix, tokenURL string) (string, []string) {
	ns := k8s.NewNamespace(t)
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		credentialSecret(t, ns, name+"-cred", "client-secret-"+randomHex(8), host(tokenURL))
		k8s.MustCreate(t, genericRequest(ns, name, name+"-cred", func(s *v1.TokenRequestSpec) { s.TokenURL = tokenURL }))
		names = append(names, name)
	}
	return ns, names
}

func genericRequest(ns, name, cred string, set func(*v1.TokenRequestSpec)) *v1.TokenRequest {
	tr := &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TokenRequestSpec{
			ClientID:   "client-" + randomHex(4),
			Scopes:     []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: cred}},
		},
	}
	set(&tr.Spec)
	return tr
}

// bystander creates an ordinary TokenRequest in a new namespace and
// requires its token within bystanderWait.
func bystander(t *testing.T) {
	t.Helper()
	ns := k8s.NewNamespace(t)
	clientID, secret := entraApp(t)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	start := time.Now()
	k8s.MustCreate(t, entraRequest(ns, "bystander", clientID, "cred"))
	for {
		tr := k8s.GetTR(t, ns, "bystander")
		if c := kube.Condition(tr, v1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
			t.Logf("bystander in %s got its token after %s", ns, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Since(start) > bystanderWait {
			t.Fatalf("bystander in %s had no token after %s; Ready: %s", ns, bystanderWait, kube.Describe(kube.Condition(tr, v1.ConditionReady)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReason waits for Ready=False with one of reasons.
func waitReason(t *testing.T, ns, name string, reasons []string, wait time.Duration) *v1.TokenRequest {
	t.Helper()
	var tr *v1.TokenRequest
	kube.Eventually(t, wait, fmt.Sprintf("%s/%s to be Ready=False with a reason in %v", ns, name, reasons), func() bool {
		tr = k8s.GetTR(t, ns, name)
		c := kube.Condition(tr, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && slices.Contains(reasons, c.Reason)
	})
	return tr
}

func entraApp(t *testing.T) (clientID, secret string) {
	h := randomHex(16)
	clientID = fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
	secret = "s3cr%t+value:" + randomHex(12)
	secretsUsed = append(secretsUsed, secret)
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: 3600})
	return clientID, secret
}

func entraRequest(ns, name, clientID, cred string) *v1.TokenRequest {
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TokenRequestSpec{
			Authority:  sts.Authority("contoso"),
			ClientID:   clientID,
			Scopes:     []string{"api://" + clientID + "/.default"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: cred}},
		},
	}
}

func credentialSecret(t *testing.T, ns, name, secret, allowed string) {
	t.Helper()
	if !strings.HasPrefix(secret, "s3cr") {
		secretsUsed = append(secretsUsed, secret)
	}
	k8s.MustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{v1.AnnotationAllowedIssuers: allowed}},
		StringData: map[string]string{"clientSecret": secret},
	})
}

func host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u.Host
}

// noLeaks looks for every client secret and every token the well-behaved
// service issued in the manager's log, in every TokenRequest's status and in
// every event.
func noLeaks(t *testing.T) {
	ctx := context.Background()
	var trs v1.TokenRequestList
	if err := k8s.List(ctx, &trs); err != nil {
		t.Fatal(err)
	}
	var events corev1.EventList
	if err := k8s.List(ctx, &events); err != nil {
		t.Fatal(err)
	}
	var places []string
	places = append(places, mgr.log.String())
	for _, tr := range trs.Items {
		places = append(places, fmt.Sprintf("%+v", tr.Status))
	}
	for _, e := range events.Items {
		places = append(places, e.Message+" "+e.Reason)
	}
	all := strings.Join(places, "\n")
	needles := append(append([]string(nil), secretsUsed...), sts.IssuedTokens()...)
	if len(needles) == 0 {
		t.Fatal("nothing to look for")
	}
	for _, s := range needles {
		if strings.Contains(all, s) {
			t.Errorf("a secret or token (%d bytes) appears in logs, status or events", len(s))
		}
	}
}
