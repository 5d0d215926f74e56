package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

const (
	namespace = "demo"
	tenant    = "demo-tenant"
	scope     = "api://token-operator-demo/.default"

	secretTokenName = "client-secret-token"
	certTokenName   = "certificate-token"
	secretAppID     = "11111111-aaaa-4bbb-8ccc-000000000001"
	certAppID       = "22222222-aaaa-4bbb-8ccc-000000000002"
)

// config is what a demo run needs; main fills it from flags.
type config struct {
	Root          string
	Assets        string
	Manager       string
	WorkDir       string
	Duration      time.Duration // 0: until ctx ends
	TokenLifetime time.Duration
	MinRemaining  time.Duration
	Interval      time.Duration
	Out           io.Writer
}

// tracked is what the demo saw of one TokenRequest.
type tracked struct {
	Name         string
	Ready        bool   // Ready=True was seen at least once
	Refreshes    int    // times expires_at changed in the Secret
	NewTokens    int    // refreshes that brought a different access token
	ForeignToken bool   // the Secret held a token the local server never issued
	Last         string // last Ready condition, for failure messages
	expiresAt    string
	token        string
}

// result is the outcome of a run.
type result struct {
	Tokens      []*tracked
	Interrupted bool // ctx ended before the duration
	// Issued and Credentials are what must never be shown or logged; tests check.
	Issued      []string
	Credentials []string
	ManagerLog  string
	// Lifetime of the tokens, and when the first refresh is expected after issue.
	Lifetime, FirstRefresh time.Duration
	// Leaks names what manager.log showed that it never should.
	Leaks []string
}

// OK says whether every TokenRequest became Ready and was refreshed with a
// new token issued by the local server.
func (r *result) OK() bool { return len(r.problems()) == 0 }

func (r *result) problems() []string {
	var p []string
	for _, l := range r.Leaks {
		p = append(p, "manager.log shows "+l)
	}
	for _, t := range r.Tokens {
		switch {
		case !t.Ready:
			p = append(p, fmt.Sprintf("%s never became Ready (last Ready condition: %s)", t.Name, t.Last))
		case t.ForeignToken:
			p = append(p, fmt.Sprintf("%s's Secret held a token the local token server never issued", t.Name))
		case t.Refreshes == 0:
			p = append(p, fmt.Sprintf("%s became Ready but its token was never refreshed (a %s token is refreshed about %s after it is issued: watch longer than that)",
				t.Name, r.Lifetime, r.FirstRefresh))
		case t.NewTokens < t.Refreshes:
			p = append(p, fmt.Sprintf("%s: expires_at changed %d times but the token only %d times", t.Name, t.Refreshes, t.NewTokens))
		}
	}
	return p
}

func run(ctx context.Context, c config) (*result, error) {
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	if c.Out == nil {
		c.Out = io.Discard
	}
	lifetime := int(c.TokenLifetime / time.Second)
	if lifetime < 5 {
		return nil, fmt.Errorf("token lifetime %s is too short: use at least 5s", c.TokenLifetime)
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Assets == "" {
		return nil, errors.New("no kube-apiserver/etcd folder: run through 'make demo', or pass -assets \"$(hack/setup-envtest.sh)\"")
	}
	manager, err := filepath.Abs(c.Manager)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(manager); err != nil {
		return nil, fmt.Errorf("no manager binary at %s: run 'make build'", manager)
	}
	work, err := filepath.Abs(c.WorkDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(c.Out, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}

	// 1. The local token server, with the two applications registered.
	srv := entraserver.New()
	defer srv.Close()
	caFile := filepath.Join(work, "token-server-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.CA().Raw}), 0o644); err != nil {
		return nil, err
	}
	clientSecret := randomString()
	certPEM, keyPEM, cert, err := clientCertificate()
	if err != nil {
		return nil, err
	}
	srv.AddApp(entraserver.App{ClientID: secretAppID, Tenant: tenant, Secrets: []string{clientSecret}, ExpiresIn: lifetime})
	srv.AddApp(entraserver.App{ClientID: certAppID, Tenant: tenant, Certificates: []*x509.Certificate{cert}, ExpiresIn: lifetime})
	srv.AddResource(tenant, strings.TrimSuffix(scope, "/.default"))
	res := &result{
		Credentials:  append([]string{clientSecret}, pemBodyLines(keyPEM)...),
		ManagerLog:   filepath.Join(work, "manager.log"),
		Lifetime:     c.TokenLifetime.Truncate(time.Second),
		FirstRefresh: firstRefresh(c.TokenLifetime.Truncate(time.Second), c.MinRemaining),
	}
	say("token server (Microsoft Entra ID protocol) at %s, tokens live %ds, CA in %s", srv.URL, lifetime, caFile)

	// 2. The control plane.
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1.AddToScheme(scheme)
	say("starting kube-apiserver and etcd from %s", c.Assets)
	env := &envtest.Environment{
		BinaryAssetsDirectory:    c.Assets,
		CRDDirectoryPaths:        []string{filepath.Join(c.Root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	var envOnce sync.Once
	stopEnv := func() {
		envOnce.Do(func() {
			say("stopping kube-apiserver and etcd")
			if err := env.Stop(); err != nil {
				fmt.Fprintln(c.Out, "stopping the control plane:", err)
			}
		})
	}
	defer stopEnv()
	user, err := env.AddUser(envtest.User{Name: "demo", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfigData, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kubeconfigData, 0o600); err != nil {
		return nil, err
	}
	cl, err := client.New(user.Config(), client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	say("control plane up at %s; in another terminal:", user.Config().Host)
	fmt.Fprintf(c.Out, "\n    export KUBECONFIG=%s\n    kubectl get tokreq -n %s -w\n\n", kubeconfig, namespace)

	// 3. The operator, as its own process.
	mgr, err := startManager(ctx, manager, []string{
		"--kubeconfig", kubeconfig,
		"--ca-bundle", caFile,
		"--metrics-bind-address", "127.0.0.1:" + freePort(),
		"--health-probe-bind-address", "127.0.0.1:" + freePort(),
		"--min-remaining-lifetime", c.MinRemaining.String(),
		"--insecure-allow-http-loopback",
	}, res.ManagerLog)
	if err != nil {
		return nil, err
	}
	var mgrOnce sync.Once
	stopManager := func() {
		mgrOnce.Do(func() {
			say("stopping the manager (pid %d)", mgr.pid())
			if err := mgr.stop(30 * time.Second); err != nil {
				fmt.Fprintln(c.Out, err)
			}
		})
	}
	defer stopManager()
	say("manager running (pid %d), logging to %s", mgr.pid(), res.ManagerLog)
	if err := mgr.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}

	// 4. The TokenRequests.
	if err := apply(ctx, cl, srv, clientSecret, certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("applying the demo objects: %w", err)
	}
	res.Tokens = []*tracked{{Name: secretTokenName}, {Name: certTokenName}}
	if c.Duration > 0 {
		say("applied TokenRequests %s and %s in namespace %s; watching for %s", secretTokenName, certTokenName, namespace, c.Duration)
	} else {
		say("applied TokenRequests %s and %s in namespace %s; watching until Ctrl-C", secretTokenName, certTokenName, namespace)
	}

	// 5. Watch.
	var deadline <-chan time.Time
	if c.Duration > 0 {
		deadline = time.After(c.Duration)
	}
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	lastTable := time.Time{}
watch:
	for {
		changed, err := observe(ctx, cl, res.Tokens, srv.IssuedTokens, say)
		if err != nil && ctx.Err() == nil {
			say("reading the TokenRequests: %v", err)
		}
		// Polls come a little late, so allow some slack to keep the pace.
		if changed || time.Since(lastTable) >= c.Interval-500*time.Millisecond {
			printTable(ctx, c.Out, cl)
			lastTable = time.Now()
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.Out)
			say("interrupted")
			res.Interrupted = true
			break watch
		case <-deadline:
			break watch
		case <-mgr.exited:
			return res, fmt.Errorf("the manager exited on its own (%v); see %s", mgr.err, res.ManagerLog)
		case <-poll.C:
		}
	}

	// 6. Stop what the demo started, then judge.
	stopManager()
	stopEnv()
	res.Issued = srv.IssuedTokens()
	if err := res.checkLog(); err != nil {
		return res, err
	}
	report(c.Out, res, c.Duration > 0)
	return res, nil
}

// checkLog looks for tokens and credentials in manager.log.
func (r *result) checkLog() error {
	log, err := os.ReadFile(r.ManagerLog)
	if err != nil {
		return err
	}
	for i, tok := range r.Issued {
		if strings.Contains(string(log), tok) {
			r.Leaks = append(r.Leaks, fmt.Sprintf("access token #%d issued by the token server", i+1))
		}
	}
	for _, cred := range r.Credentials {
		if strings.Contains(string(log), cred) {
			r.Leaks = append(r.Leaks, "a client secret or private key")
			break
		}
	}
	return nil
}

// report prints the outcome; verdict says whether it is a pass/fail check.
func report(out io.Writer, res *result, verdict bool) {
	fmt.Fprintln(out)
	for _, t := range res.Tokens {
		fmt.Fprintf(out, "  %-20s ready: %-5v refreshes: %d\n", t.Name, t.Ready, t.Refreshes)
	}
	if !verdict {
		for _, l := range res.Leaks {
			fmt.Fprintf(out, "\nWARNING: manager.log shows %s (%s)\n", l, res.ManagerLog)
		}
		return
	}
	if p := res.problems(); len(p) > 0 {
		fmt.Fprintln(out, "\nFAIL:")
		for _, s := range p {
			fmt.Fprintln(out, "  -", s)
		}
		fmt.Fprintf(out, "  manager log: %s\n", res.ManagerLog)
		return
	}
	fmt.Fprintln(out, "\nOK: both TokenRequests became Ready, the operator refreshed each token before it expired, and its log shows no token or credential.")
}

// apply creates the namespace, the two credentials and the two TokenRequests.
func apply(ctx context.Context, cl client.Client, srv *entraserver.Server, clientSecret string, certPEM, keyPEM []byte) error {
	consent := map[string]string{v1.AnnotationAllowedIssuers: srv.Host()}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-app-client-secret", Namespace: namespace, Annotations: consent},
			StringData: map[string]string{"clientSecret": clientSecret},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-app-certificate", Namespace: namespace, Annotations: consent},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
		},
		&v1.TokenRequest{
			ObjectMeta: metav1.ObjectMeta{Name: secretTokenName, Namespace: namespace},
			Spec: v1.TokenRequestSpec{
				Authority: srv.Authority(tenant),
				ClientID:  secretAppID,
				Scopes:    []string{scope},
				Credential: &v1.Credential{
					ClientSecret: &v1.ClientSecretCredential{Name: "demo-app-client-secret"},
				},
			},
		},
		&v1.TokenRequest{
			ObjectMeta: metav1.ObjectMeta{Name: certTokenName, Namespace: namespace},
			Spec: v1.TokenRequestSpec{
				Authority: srv.Authority(tenant),
				ClientID:  certAppID,
				Scopes:    []string{scope},
				Credential: &v1.Credential{
					Certificate: &v1.CertificateCredential{SecretName: "demo-app-certificate", SendX5C: true},
				},
			},
		},
	}
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil {
			return fmt.Errorf("%T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// observe reads each TokenRequest and its Secret, records readiness and
// refreshes, and prints a line per refresh. It reports whether anything
// worth a new table happened.
func observe(ctx context.Context, cl client.Client, tokens []*tracked, issued func() []string, say func(string, ...any)) (bool, error) {
	changed := false
	var errs []error
	for _, t := range tokens {
		tr := &v1.TokenRequest{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: t.Name}, tr); err != nil {
			errs = append(errs, err)
			continue
		}
		if c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady); c != nil {
			t.Last = fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
			if c.Status == metav1.ConditionTrue && !t.Ready {
				t.Ready, changed = true, true
				say("%s is Ready (%s)", t.Name, c.Reason)
			}
		}
		sec := &corev1.Secret{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: secretNameOf(tr)}, sec); err != nil {
			if client.IgnoreNotFound(err) != nil {
				errs = append(errs, err)
			}
			continue
		}
		exp, tok := string(sec.Data[v1.KeyExpiresAt]), string(sec.Data[v1.KeyAccessToken])
		if tok != "" && !slices.Contains(issued(), tok) { // read after the Secret, so it includes its token
			t.ForeignToken = true
		}
		if exp != "" && t.expiresAt != "" && exp != t.expiresAt {
			t.Refreshes++
			newToken := tok != t.token
			if newToken {
				t.NewTokens++
			}
			say("REFRESH #%d %s: expires_at %s -> %s (new access token: %v)", t.Refreshes, t.Name, t.expiresAt, exp, yesNo(newToken))
			changed = true
		}
		if exp != "" {
			t.expiresAt, t.token = exp, tok
		}
	}
	return changed, errors.Join(errs...)
}

// printTable prints what `kubectl get tokreq` shows, with times relative to
// now, then each Secret's keys and expires_at (never the token).
func printTable(ctx context.Context, out io.Writer, cl client.Client) {
	var list v1.TokenRequestList
	if err := cl.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return
	}
	now := time.Now()
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s  kubectl get tokreq -n %s\n", now.Format("15:04:05"), namespace)
	fmt.Fprintf(&b, "  %-20s %-6s %-20s %-24s %-24s %s\n", "NAME", "READY", "SECRET", "EXPIRES", "REFRESH", "REASON")
	for _, tr := range list.Items {
		ready, reason := "", ""
		if c := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady); c != nil {
			ready, reason = string(c.Status), c.Reason
		}
		fmt.Fprintf(&b, "  %-20s %-6s %-20s %-24s %-24s %s\n", tr.Name, ready, tr.Status.SecretName,
			when(tr.Status.ExpiresAt, now), when(tr.Status.RefreshAt, now), reason)
	}
	for _, tr := range list.Items {
		sec := &corev1.Secret{}
		name := secretNameOf(&tr)
		if err := cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec); err != nil {
			fmt.Fprintf(&b, "  secret %-20s (not there yet)\n", name)
			continue
		}
		keys := make([]string, 0, len(sec.Data))
		for k := range sec.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "  secret %-20s keys: %s   expires_at: %s\n", name, strings.Join(keys, ","), sec.Data[v1.KeyExpiresAt])
	}
	fmt.Fprint(out, b.String())
}

func secretNameOf(tr *v1.TokenRequest) string {
	if tr.Spec.SecretName != "" {
		return tr.Spec.SecretName
	}
	return tr.Name
}

// when shows a time as a clock time and how far away it is.
func when(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", t.Local().Format("15:04:05"), d)
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format("15:04:05"), -d)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// firstRefresh mirrors the operator's default policy, without jitter: a
// third of the lifetime left, at least minRemaining left, or half the
// lifetime for tokens not longer than minRemaining.
func firstRefresh(lifetime, minRemaining time.Duration) time.Duration {
	at := lifetime - lifetime/3
	switch {
	case lifetime <= minRemaining:
		at = lifetime / 2
	case lifetime-at < minRemaining:
		at = lifetime - minRemaining
	}
	return at.Round(time.Second)
}

// clientCertificate makes a self-signed RSA certificate for the certificate
// credential (Entra takes RSA keys only).
func clientCertificate() (certPEM, keyPEM []byte, cert *x509.Certificate, err error) {
	key, err := testcert.NewRSA(2048)
	if err != nil {
		return nil, nil, nil, err
	}
	// Valid for a day: the demo may run as long as the person watches.
	cert, err = testcert.NewSelfSigned(key, "token-operator demo client",
		testcert.WithKeyUsage(x509.KeyUsageDigitalSignature), testcert.WithValidity(24*time.Hour))
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err = testcert.NewPKCS8PEM(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return testcert.CertPEM(cert), keyPEM, cert, nil
}

// pemBodyLines are the base64 lines of a PEM block, each long enough to be
// unmistakable in a log.
func pemBodyLines(b []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
