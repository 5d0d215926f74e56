//go:build linux

package hostile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

const googleProvider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/clusters/providers/hostile"

// hostileGoogle is a Google STS and IAM Credentials look-alike run by a
// hostile token service operator: it echoes every token it is sent back in
// its refusals, or redirects the token POST elsewhere. It records what it
// was sent, so that the test can look for it in the status and events.
type hostileGoogle struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func (h *hostileGoogle) saw(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, v)
}

func (h *hostileGoogle) tokens() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

func startHostileGoogle(t *testing.T, elsewhere string, unconsented *atomic.Int32) *hostileGoogle {
	h := &hostileGoogle{}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/redirect/v1/token":
			http.Redirect(w, r, elsewhere, http.StatusTemporaryRedirect)
		case strings.HasPrefix(r.URL.Path, "/iam-elsewhere/"):
			unconsented.Add(1)
		case strings.HasSuffix(r.URL.Path, "/v1/token"):
			_ = r.ParseForm()
			subject := r.PostForm.Get("subject_token")
			h.saw(subject)
			if strings.Contains(r.URL.Path, "echo-sts") {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "subject " + subject + " refused"})
				return
			}
			fed := "ya29.federated-" + randomHex(16)
			h.saw(fed)
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fed, "token_type": "Bearer", "expires_in": 3600,
				"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
		default: // generateAccessToken: refuse, repeating the bearer token
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 403, "status": "PERMISSION_DENIED",
				"message": "Permission denied for " + r.Header.Get("Authorization")}})
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// googleTargets: a namespace editor points google targets at hostile
// services: tokens echoed in refusals reach no status or event, a
// redirect carries the ServiceAccount token nowhere, and an IAM
// Credentials host the ServiceAccount did not consent to gets nothing,
// not even the STS call before it.
func googleTargets(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	var elsewhereCalls, unconsentedCalls atomic.Int32
	elsewhere := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { elsewhereCalls.Add(1) }))
	t.Cleanup(elsewhere.Close)
	unconsented := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { unconsentedCalls.Add(1) }))
	t.Cleanup(unconsented.Close)
	h := startHostileGoogle(t, elsewhere.URL+"/v1/token", &unconsentedCalls)
	u, _ := url.Parse(h.URL)
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: u.Host}}})
	targets := map[string]*v1.GoogleTarget{
		"echo-sts":      {STSURL: h.URL + "/echo-sts/v1/token"},
		"echo-iam":      {STSURL: h.URL + "/v1/token", ServiceAccountEmail: "app@p.iam.gserviceaccount.com", IAMCredentialsURL: h.URL},
		"redirect":      {STSURL: h.URL + "/redirect/v1/token"},
		"iam-elsewhere": {STSURL: h.URL + "/iam-elsewhere/v1/token", ServiceAccountEmail: "app@p.iam.gserviceaccount.com", IAMCredentialsURL: unconsented.URL},
	}
	var names []string
	for name, g := range targets {
		g.Audience = googleProvider
		k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.TokenRequestSpec{
			Google: g, Credential: &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}}})
		names = append(names, name)
	}
	for _, name := range names {
		tr := waitReason(t, ns, name, googleReasons, googleWait)
		t.Logf("%s: %s", name, kube.Condition(tr, v1.ConditionReady).Message)
	}
	seen := h.tokens()
	if len(seen) < 3 {
		t.Fatalf("the hostile service saw %d tokens; the step did not run", len(seen))
	}
	var trs v1.TokenRequestList
	var events eventsv1.EventList
	if err := k8s.List(context.Background(), &trs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := k8s.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	text, _ := json.Marshal([]any{trs, events})
	for _, tok := range seen {
		if strings.Contains(string(text), tok) {
			t.Errorf("a token the hostile service was sent or issued appears in a status or event")
		}
	}
	if n := elsewhereCalls.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	if n := unconsentedCalls.Load(); n != 0 {
		t.Errorf("a request whose IAM Credentials host has no consent made %d calls", n)
	}
	return ns, names
}

var googleReasons = []string{v1.ReasonTokenServiceRejected, v1.ReasonCredentialNotAllowed}

const googleWait = 30 * time.Second
