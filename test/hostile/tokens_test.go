//go:build linux

package hostile_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// hugeTokenBytes is an access token under the 1 MiB answer cap and far
// over the default --max-token-bytes.
const hugeTokenBytes = 900 << 10

// consentedTokenService is a token service the credentials consent to; it
// answers well-formed token responses. Clients named "huge-…" always get a 900 KiB access token;
// "later-…" get an ordinary one first and 900 KiB ones afterwards; others
// get ordinary tokens. It counts calls and keeps the scope parameters.
type consentedTokenService struct {
	srv *httptest.Server

	mu     sync.Mutex
	calls  map[string]int
	scopes []string
}

var (
	consentedTokenServiceOnce sync.Once
	consentedTokens           *consentedTokenService
)

// consentedTokenSvc starts the service once; it serves until the test binary ends,
// since the TokenRequests aimed at it stay while later steps run.
func consentedTokenSvc() *consentedTokenService {
	consentedTokenServiceOnce.Do(func() {
		consentedTokens = &consentedTokenService{calls: map[string]int{}}
		huge := strings.Repeat("h", hugeTokenBytes)
		consentedTokens.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil || r.URL.Path != "/token" {
				http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
				return
			}
			id, _, _ := r.BasicAuth()
			consentedTokens.mu.Lock()
			consentedTokens.calls[id]++
			n := consentedTokens.calls[id]
			consentedTokens.scopes = append(consentedTokens.scopes, r.PostForm.Get("scope"))
			consentedTokens.mu.Unlock()
			access := "ordinary-token-" + randomHex(16)
			if strings.HasPrefix(id, "huge-") || (strings.HasPrefix(id, "later-") && n > 1) {
				access = huge
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, access)
		}))
	})
	return consentedTokens
}

func (s *consentedTokenService) callsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

func (s *consentedTokenService) scopesSent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.scopes...)
}

// hugeTokens: 10 TokenRequests whose consented token service answers
// 900 KiB access tokens, and one that had an ordinary token before its
// forced refresh got a 900 KiB one. None is written; the manager does not
// grow by what it refused; the ordinary token stays in its Secret.
func hugeTokens(t *testing.T) (string, []string) {
	svc := consentedTokenSvc()
	ns := k8s.NewNamespace(t)

	// The ordinary token first, so that its Secret exists.
	later := "later-" + randomHex(4)
	credentialSecret(t, ns, "later-cred", "client-secret-"+randomHex(8), host(svc.srv.URL))
	k8s.MustCreate(t, genericRequest(ns, "later", "later-cred", func(s *v1.TokenRequestSpec) {
		s.TokenURL, s.ClientID = svc.srv.URL+"/token", later
	}))
	k8s.WaitReady(t, ns, "later")
	good := string(k8s.GetSecret(t, ns, "later").Data[v1.KeyAccessToken])

	settleManager()
	before, err := mgr.RSS()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 10 {
		name := fmt.Sprintf("huge-%d", i)
		credentialSecret(t, ns, name+"-cred", "client-secret-"+randomHex(8), host(svc.srv.URL))
		k8s.MustCreate(t, genericRequest(ns, name, name+"-cred", func(s *v1.TokenRequestSpec) {
			s.TokenURL, s.ClientID = svc.srv.URL+"/token", "huge-"+randomHex(4)
		}))
		names = append(names, name)
	}
	k8s.UpdateTR(t, ns, "later", func(tr *v1.TokenRequest) {
		metav1.SetMetaDataAnnotation(&tr.ObjectMeta, v1.AnnotationRefreshRequestedAt, time.Now().UTC().Format(time.RFC3339))
	})
	for _, name := range names {
		tr := waitReason(t, ns, name, []string{v1.ReasonTokenTooLarge}, 30*time.Second)
		if n := svc.callsOf(tr.Spec.ClientID); n == 0 {
			t.Errorf("%s: refused without a token call; the step proves nothing", name)
		}
		if s := k8s.FindSecret(t, ns, name); s != nil {
			t.Errorf("%s: a Secret was written for a refused token (%d bytes)", name, len(s.Data[v1.KeyAccessToken]))
		}
	}
	k8s.WaitReason(t, ns, "later", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenTooLarge)
	if n := svc.callsOf(later); n != 2 {
		t.Errorf("the forced refresh made %d calls in all, want 2", n)
	}
	if got := string(k8s.GetSecret(t, ns, "later").Data[v1.KeyAccessToken]); got != good {
		t.Errorf("the last good token was replaced (%d bytes now)", len(got))
	}
	if c := kube.Condition(k8s.GetTR(t, ns, "later"), v1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("later: Ready is %s while its Secret still holds a valid token", kube.Describe(c))
	}

	settleManager()
	after, err := mgr.RSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("manager RSS %d MiB before and %d MiB after 11 refused tokens of 900 KiB (growth %d KiB)", before>>20, after>>20, (after-before)>>10)
	if after-before > 12<<20 {
		t.Errorf("the manager grew by %d MiB from tokens it refused", (after-before)>>20)
	}
	return ns, names
}

// settleManager gives the manager a moment to finish what it was doing and
// collect what its last calls left.
func settleManager() { time.Sleep(2 * time.Second) }

// smuggledScopes: a ClusterTokenIssuer allows orders.*; TokenRequests try
// scopes that token services split into orders.read and admin. The API
// server refuses them; objects stored before that rule (simulated by
// relaxing the CRD for a moment) are refused by the operator. No smuggled
// scope reaches the token service.
func smuggledScopes(t *testing.T) (string, []string) {
	svc := consentedTokenSvc()
	ctx := context.Background()
	id := "smuggle-" + randomHex(4)
	credentialSecret(t, testenv.OperatorNamespace, id+"-cred", "client-secret-"+randomHex(8), host(svc.srv.URL))
	issuer := &v1.ClusterTokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: id},
		Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			TokenURL: svc.srv.URL + "/token", ClientID: id, AllowedScopes: []string{"orders.*"},
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: id + "-cred"}},
		}},
	}
	k8s.MustCreate(t, issuer)
	t.Cleanup(func() { _ = k8s.Delete(ctx, issuer) })

	ns := k8s.NewNamespace(t)
	fromIssuer := func(name, scope string) *v1.TokenRequest {
		return &v1.TokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.TokenRequestSpec{
				IssuerRef: &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: id},
				Scopes:    []string{scope},
			},
		}
	}
	// The issuer works for an honest scope.
	k8s.MustCreate(t, fromIssuer("honest", "orders.read"))
	k8s.WaitReady(t, ns, "honest")
	honestCalls := svc.callsOf(id)

	smuggled := map[string]string{
		"space": " ", "tab": "\t", "vertical tab": "\v", "form feed": "\f", "newline": "\n", "NUL": "\x00",
		"DEL": "\x7f", "double quote": `"`, "backslash": `\`, "U+00A0": "\u00a0", "U+0085": "\u0085",
		"U+2028": "\u2028", "U+3000": "\u3000", "U+FEFF": "\ufeff",
	}
	for what, c := range smuggled {
		err := k8s.Create(ctx, fromIssuer("smuggle", "orders.read"+c+"admin"), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "RFC 6749 scope-token") {
			t.Errorf("a scope with %s: admission answered %v", what, err)
		}
	}
	bad := issuer.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: id + "-wide"}
	bad.Spec.AllowedScopes = []string{"orders.*\u00a0admin"}
	if err := k8s.Create(ctx, bad, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "RFC 6749 scope-token") {
		t.Errorf("allowedScopes with U+00A0: admission answered %v", err)
	}

	// Objects written before the rule existed: an issuer's and an inline one.
	credentialSecret(t, ns, "inline-cred", "client-secret-"+randomHex(8), host(svc.srv.URL))
	inlineID := "smuggle-inline-" + randomHex(4)
	stored := []*v1.TokenRequest{
		fromIssuer("stored-nbsp", "orders.read\u00a0admin"),
		fromIssuer("stored-vt", "orders.read\vadmin"),
		fromIssuer("stored-nel", "orders.read\u0085admin"),
		genericRequest(ns, "stored-inline", "inline-cred", func(s *v1.TokenRequestSpec) {
			s.TokenURL, s.ClientID, s.Scopes = svc.srv.URL+"/token", inlineID, []string{"orders.read\u00a0admin"}
		}),
	}
	withoutScopeRule(t, func() {
		for _, tr := range stored {
			k8s.MustCreate(t, tr)
		}
	})
	var names []string
	for _, tr := range stored {
		waitReason(t, ns, tr.Name, []string{v1.ReasonInvalidSpec}, 20*time.Second)
		names = append(names, tr.Name)
	}
	time.Sleep(time.Second) // a call made after the status was written would show now
	if n := svc.callsOf(id) - honestCalls; n != 0 {
		t.Errorf("%d token calls for smuggled scopes through the issuer", n)
	}
	if n := svc.callsOf(inlineID); n != 0 {
		t.Errorf("%d token calls for a smuggled inline scope", n)
	}
	for _, s := range svc.scopesSent() {
		if strings.Contains(s, "admin") {
			t.Errorf("the token service received scope %q", s)
		}
	}
	return ns, names
}

var tokenRequestCRDGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// withoutScopeRule runs f while the TokenRequest CRD lacks the scope-token
// rule, as a cluster upgraded from an older release would have had it.
func withoutScopeRule(t *testing.T, f func()) {
	t.Helper()
	ctx := context.Background()
	const name = "tokenrequests.tokens.token-operator.io"
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(tokenRequestCRDGVK)
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
		t.Fatal(err)
	}
	original, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	relaxed := make([]any, len(original))
	for i, v := range original {
		ver := deepCopyMap(v.(map[string]any))
		unstructured.RemoveNestedField(ver, "schema", "openAPIV3Schema", "properties", "spec", "properties", "scopes", "x-kubernetes-validations")
		relaxed[i] = ver
	}
	setVersions := func(versions []any) {
		t.Helper()
		kube.Eventually(t, 10*time.Second, "the CRD update", func() bool {
			cur := &unstructured.Unstructured{}
			cur.SetGroupVersionKind(tokenRequestCRDGVK)
			if err := k8s.Get(ctx, client.ObjectKey{Name: name}, cur); err != nil {
				return false
			}
			_ = unstructured.SetNestedSlice(cur.Object, versions, "spec", "versions")
			return k8s.Update(ctx, cur) == nil
		})
	}
	probe := func() error {
		tr := &v1.TokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "probe"},
			Spec: v1.TokenRequestSpec{TokenURL: "https://idp.example.com/token", ClientID: "c", Scopes: []string{"a\u00a0b"},
				Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "c"}}},
		}
		return k8s.Create(ctx, tr, client.DryRunAll)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		setVersions(original)
		kube.Eventually(t, 20*time.Second, "the scope-token rule to apply again", func() bool { return probe() != nil })
	}
	t.Cleanup(restore)
	setVersions(relaxed)
	kube.Eventually(t, 20*time.Second, "the relaxed CRD to apply", func() bool { return probe() == nil })
	f()
	restore()
}

func deepCopyMap(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}
