package tokenrequest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/syncbuf"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

var (
	env *testenv.Env
	k8s *kube.Cluster
	sts *entraserver.Server
	// logs holds everything the operator logged during the run.
	logs syncbuf.Buffer
	// secretsUsed collects every client secret the tests hand the operator.
	secretsUsed sync.Map
)

func TestMain(m *testing.M) {
	// Debug level: the leak test must see everything the operator could log.
	ctrl.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(zapcore.Level(-5))))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = &kube.Cluster{Client: env.Client, NamespacePrefix: "tr-", Wait: 20 * time.Second}
	sts = entraserver.New()
	code := m.Run()
	sts.Close()
	_ = env.Stop()
	os.Exit(code)
}

// startManager runs an operator against the test API server until the test ends
// or stop is called.
func startManager(t testing.TB, tweak ...func(*operator.Options)) (stop func()) {
	t.Helper()
	_, stop = startManagerWithCache(t, tweak...)
	return stop
}

// startManagerWithCache is startManager that also returns the manager's
// cache, for tests of what it holds.
func startManagerWithCache(t testing.TB, tweak ...func(*operator.Options)) (cache.Cache, func()) {
	t.Helper()
	o := operator.Defaults()
	o.MetricsBindAddress = "0"
	// Tests that bind metrics scrape plain HTTP; the secure endpoint's turn it on.
	o.MetricsSecure = false
	o.HealthProbeBindAddress = "0"
	o.RootCAs = sts.CertPool()
	o.SkipNameValidation = true
	o.TokenRequestTimeout = 5 * time.Second
	// Tests use tokens and hints of seconds; the storm floor has its own tests.
	o.MinRefreshInterval = time.Second
	o.ClusterResourceNamespace = testenv.OperatorNamespace
	for _, f := range tweak {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The manager acts as its service account with the generated roles only.
	cfg, err := env.OperatorConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := operator.NewManager(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return mgr.GetCache(), stop
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newClientID returns a GUID-shaped client ID unique to a test.
func newClientID() string {
	h := randomHex(16)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// app registers a fresh application with a client secret and returns its ID and secret.
func app(t testing.TB, expiresIn int) (clientID, secret string) {
	t.Helper()
	clientID, secret = newClientID(), "s3cr%t+value:"+randomHex(12)
	secretsUsed.Store(secret, true)
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: expiresIn})
	return clientID, secret
}

// credentialSecret creates a client-secret Secret; allowed is the consent annotation ("" for none).
func credentialSecret(t testing.TB, ns, name, secret, allowed string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		StringData: map[string]string{"clientSecret": secret},
	}
	if allowed != "" {
		s.Annotations = map[string]string{v1.AnnotationAllowedIssuers: allowed}
	}
	k8s.MustCreate(t, s)
	return s
}

// entraRequest is a TokenRequest for the test Entra server with a client secret.
func entraRequest(ns, name, clientID, credSecret string) *v1.TokenRequest {
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenRequestSpec{
			Authority:  sts.Authority("contoso"),
			ClientID:   clientID,
			Scopes:     []string{"api://" + clientID + "/.default"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: credSecret}},
		},
	}
}

func issuedBySTS(token string) bool {
	for _, t := range sts.IssuedTokens() {
		if t == token {
			return true
		}
	}
	return false
}

// eventsFor lists the events about a TokenRequest, by reason.
func eventsFor(t *testing.T, ns, name string) map[string][]string {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out[e.Reason] = append(out[e.Reason], e.Note)
		}
	}
	return out
}

func waitEvent(t *testing.T, ns, name, reason string) []string {
	t.Helper()
	var notes []string
	kube.Eventually(t, 10*time.Second, "event "+reason+" for "+name, func() bool {
		notes = eventsFor(t, ns, name)[reason]
		return len(notes) > 0
	})
	return notes
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func objectKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
