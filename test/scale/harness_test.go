//go:build linux

package scale_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/managerproc"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

const (
	// credentials is how many credential Secrets (and client IDs) the N
	// TokenRequests share, one per namespace.
	credentials = 10
	// writers is how many goroutines create objects, for the floor and
	// for the TokenRequests alike.
	writers = 8
	// quiet is how long no watch event may arrive before a phase counts
	// as settled.
	quiet = 3 * time.Second
)

// config is one run of the harness.
type config struct {
	n int
	// lifetime is the tokens' expires_in; the refresh wave comes about
	// two thirds of it after the first token call.
	lifetime time.Duration
	// profileDir, when set, receives a CPU and a heap profile of the
	// manager taken while the TokenRequests are created.
	profileDir string
	// unrelated is how many Secrets no TokenRequest uses are created at the
	// end, to see what they cost the manager (it caches their metadata).
	unrelated int
	// tokenSize is the length of the access tokens, in bytes.
	tokenSize int
	// managerFlags are added to the manager's flags.
	managerFlags []string
	logf         func(format string, args ...any)
}

// result holds what one run measured.
type result struct {
	n        int
	lifetime time.Duration

	floor         time.Duration // N creates + N updates by a plain client
	operatorFloor time.Duration // the operator's writes for N TokenRequests (TokenRequest create, Secret create, status update) by a plain client
	tokensIn      time.Duration // N TokenRequests created until every Secret holds a token
	ready         time.Duration // ... until every TokenRequest is Ready=True at its current generation

	creationCalls        int
	creationSecretWrites int                // Secret creates and updates seen until settled
	creationTRWrites     int                // TokenRequest updates (spec, metadata or status) seen until settled
	roundTrips           map[string]float64 // manager's API requests by method, creation phase
	codes                map[string]float64 // ... by status code
	peakRSS              int64              // highest VmHWM over every manager process of the run
	processPeaks         []int64            // VmHWM of each manager process, in start order
	settledRSS           int64
	settledAnon, goHeap  int64 // RssAnon and the Go heap in use after settle

	restartCalls        int
	restartSecretWrites int
	restartTRWrites     int
	restartReconciled   time.Duration // process start until every TokenRequest was reconciled once
	restartDistinct     int           // distinct TokenRequests the restarted process reconciled
	restartReconciles   float64       // reconciles it counted, repeats included
	restartRoundTrips   map[string]float64
	restartCodes        map[string]float64

	waveCalls        int
	waveSecretWrites int
	waveTRWrites     int
	waveMaxPerSecret int // most Secret writes one object had in the window
	waveRewritten    int // output Secrets that got a new token in the window
	waveDuration     time.Duration
	peakCallsPerSec  int
	peakWritesPerSec int
	waveRoundTrips   map[string]float64
	waveCodes        map[string]float64

	unrelated int
	// Go heap after a forced GC before the unrelated Secrets and once the
	// manager has seen the last of them, and how long that took.
	heapBefore, heapAfter int64
	unrelatedSeen         time.Duration

	throttleLines int // "client-side throttling" lines in the manager logs
	refusedCalls  int
}

// run measures cfg.n TokenRequests over credentials credentials against a
// fresh API server, with the manager as its own process.
func run(tb testing.TB, cfg config) *result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf := cfg.logf
	res := &result{n: cfg.n, lifetime: cfg.lifetime}

	env, err := testenv.Start()
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	// The harness's own client is not rate limited: the floor it measures
	// is the API server's, not client-go's.
	fast := rest.CopyConfig(env.Config)
	fast.QPS = -1
	c, err := client.NewWithWatch(fast, client.Options{Scheme: env.Scheme})
	if err != nil {
		tb.Fatal(err)
	}

	work := tb.TempDir()
	bin, err := managerproc.Build(work)
	if err != nil {
		tb.Fatal(err)
	}
	// The manager runs as its service account, bound to the generated
	// roles only, as in the hostile suite; the kubeconfig's context
	// namespace (testenv.OperatorNamespace) is its running namespace, so
	// the cluster resource namespace defaults to it.
	kubeconfig, err := env.WriteOperatorKubeconfig(ctx, work)
	if err != nil {
		tb.Fatal(err)
	}

	quietDown := func(phase string) {
		d, err := waitForQuietControlPlane(time.Minute)
		switch {
		case errors.Is(err, errStillBusy):
			logf("N=%d: control plane still busy after %s (%s); going on", cfg.n, d.Round(time.Second), phase)
		case err != nil:
			tb.Fatal(err)
		default:
			logf("N=%d: control plane quiet after %s (%s)", cfg.n, d.Round(time.Second), phase)
		}
	}
	// Every phase starts on an idle API server, so the floors and the
	// manager meet the same one.
	quietDown("start")

	// The yardstick: one create and one update per object by 8 writers.
	floorNS := namespace(ctx, tb, c, "scale-floor-")
	res.floor = parallel(tb, cfg.n, func(i int) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: floorNS, Name: fmt.Sprintf("floor-%05d", i)},
			Data: map[string][]byte{"v": []byte("1")}}
		if err := c.Create(ctx, s); err != nil {
			return err
		}
		s.Data["v"] = []byte("2")
		return c.Update(ctx, s)
	})
	if err := c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(floorNS)); err != nil {
		tb.Fatal(err)
	}
	logf("N=%d: write floor %s", cfg.n, res.floor.Round(time.Millisecond))

	ts := newTokenServer(int(cfg.lifetime/time.Second), cfg.tokenSize)
	defer ts.Close()

	// The second yardstick: the writes the operator's job consists of, per
	// TokenRequest, by the same 8 writers, before the manager starts.
	quietDown("write floor")
	res.operatorFloor = operatorFloor(ctx, tb, c, cfg.n, ts.TokenURL(), cfg.lifetime, cfg.tokenSize)
	logf("N=%d: operator floor %s", cfg.n, res.operatorFloor.Round(time.Millisecond))
	var nss []string
	for k := range credentials {
		ns := namespace(ctx, tb, c, "scale-")
		nss = append(nss, ns)
		ts.addClient(clientID(k), clientSecret(k))
		cred := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cred", Annotations: map[string]string{v1.AnnotationAllowedIssuers: ts.Host()}},
			StringData: map[string]string{"clientSecret": clientSecret(k)},
		}
		if err := c.Create(ctx, cred); err != nil {
			tb.Fatal(err)
		}
	}

	rec := newRecorder()
	if err := rec.follow(ctx, c, &corev1.SecretList{}, client.MatchingLabels{v1.LabelManagedBy: v1.ManagedByValue}); err != nil {
		tb.Fatal(err)
	}
	if err := rec.follow(ctx, c, &v1.TokenRequestList{}); err != nil {
		tb.Fatal(err)
	}

	quietDown("operator floor")
	pprofAddr := managerproc.FreeAddr()
	// Refresh at about two thirds of the lifetime; the floors below stay
	// out of the way.
	short := (cfg.lifetime / 6).Round(time.Second)
	mgr, err := managerproc.Start(bin, append([]string{
		"--kubeconfig", kubeconfig,
		"--insecure-allow-http-loopback",
		"--pprof-bind-address", pprofAddr,
		"--min-refresh-interval", short.String(),
		"--min-remaining-lifetime", short.String(),
	}, cfg.managerFlags...)...)
	if err != nil {
		tb.Fatal(err)
	}
	logs := []*managerproc.Process{mgr}
	defer func() {
		mgr.Stop()
		if tb.Failed() {
			tb.Logf("--- manager log (last 100 lines) ---\n%s", mgr.LogTail(100))
		}
	}()

	// Creation: N TokenRequests by 8 writers until every Secret holds a token.
	created := rec.mark()
	var profiles sync.WaitGroup
	if cfg.profileDir != "" {
		profiles.Add(2)
		go func() {
			defer profiles.Done()
			save(ctx, tb, "http://"+pprofAddr+"/debug/pprof/profile?seconds=20", filepath.Join(cfg.profileDir, fmt.Sprintf("cpu-%d.pprof", cfg.n)))
		}()
		go func() {
			defer profiles.Done()
			rec.waitFor(ctx, time.Hour, func(r *recorder) bool { return r.withToken >= cfg.n/2 })
			save(ctx, tb, "http://"+pprofAddr+"/debug/pprof/heap", filepath.Join(cfg.profileDir, fmt.Sprintf("heap-%d.pprof", cfg.n)))
		}()
	}
	start := time.Now()
	var createdAll atomic.Int64
	go func() {
		d := parallel(tb, cfg.n, func(i int) error {
			return c.Create(ctx, tokenRequest(nss[i%credentials], i, ts.TokenURL()))
		})
		createdAll.Store(int64(d))
	}()
	readyWait := 2*time.Minute + time.Duration(cfg.n)*200*time.Millisecond
	if !rec.waitFor(ctx, readyWait, func(r *recorder) bool { return r.withToken >= cfg.n }) {
		rec.mu.Lock()
		got := rec.withToken
		rec.mu.Unlock()
		tb.Fatalf("after %s only %d of %d output Secrets hold a token", readyWait, got, cfg.n)
	}
	res.tokensIn = time.Since(start)
	// The timed phase ends where the operator floor's does: with the status
	// write that says Ready for the current generation.
	if !rec.waitFor(ctx, readyWait, func(r *recorder) bool { return r.readyNow >= cfg.n }) {
		rec.mu.Lock()
		got := rec.readyNow
		rec.mu.Unlock()
		tb.Fatalf("after %s only %d of %d TokenRequests are Ready at their generation", readyWait, got, cfg.n)
	}
	res.ready = time.Since(start)
	logf("N=%d: every Secret holds a token after %s, every TokenRequest Ready after %s (creates took %s)", cfg.n,
		res.tokensIn.Round(time.Millisecond), res.ready.Round(time.Millisecond), time.Duration(createdAll.Load()).Round(time.Millisecond))
	profiles.Wait()
	settle(ctx, rec)
	if cfg.profileDir != "" {
		save(ctx, tb, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", filepath.Join(cfg.profileDir, fmt.Sprintf("heap-settled-%d.pprof", cfg.n)))
	}
	res.creationCalls = len(ts.Calls())
	secrets, trs := rec.since(created)
	res.creationSecretWrites, res.creationTRWrites = len(secrets), count(trs, watch.Modified)
	if res.settledRSS, err = mgr.RSS(); err != nil {
		tb.Fatal(err)
	}
	if res.settledAnon, err = mgr.RSSAnon(); err != nil {
		tb.Fatal(err)
	}
	text, err := mgr.Scrape(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	res.goHeap = int64(sum(text, "go_memstats_heap_inuse_bytes", nil))
	res.roundTrips = byLabel(text, "rest_client_requests_total", "method", nil)
	res.codes = byLabel(text, "rest_client_requests_total", "code", nil)
	firstCall := ts.Calls()[0]

	// Restart while every token is valid: no token call, no Secret write.
	restarted := rec.mark()
	callsBefore := len(ts.Calls())
	notePeak(tb, res, mgr) // the process's VmHWM is gone once it exits
	mgr, err = mgr.Restart()
	if err != nil {
		tb.Fatal(err)
	}
	logs = append(logs, mgr)
	deadline := time.Now().Add(readyWait)
	for {
		text, err := mgr.Scrape(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		// A reconcile sets the TokenRequest's token_operator_token_ready
		// series in this process, so the series count distinct ones;
		// reconcile_total counts repeats too.
		res.restartDistinct = readySeries(text, nss)
		res.restartReconciles = sum(text, "controller_runtime_reconcile_total", map[string]string{"controller": "tokenrequest"})
		if res.restartDistinct >= cfg.n {
			res.restartReconciled = time.Since(mgr.Started)
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the restarted manager reconciled %d of %d TokenRequests in %s", res.restartDistinct, cfg.n, readyWait)
		}
		time.Sleep(250 * time.Millisecond)
	}
	settle(ctx, rec)
	res.restartCalls = len(ts.Calls()) - callsBefore
	secrets, trs = rec.since(restarted)
	res.restartSecretWrites, res.restartTRWrites = len(secrets), count(trs, watch.Modified)
	text, err = mgr.Scrape(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	res.restartRoundTrips = byLabel(text, "rest_client_requests_total", "method", nil)
	res.restartCodes = byLabel(text, "rest_client_requests_total", "code", nil)
	logf("N=%d: restart reconciled every TokenRequest %s after the process start; %d token calls, %d Secret writes",
		cfg.n, res.restartReconciled.Round(time.Millisecond), res.restartCalls, res.restartSecretWrites)
	if earliest := firstCall.Add(cfg.lifetime * 6 / 10); time.Now().After(earliest) {
		logf("N=%d: WARNING the restart phase ended %s after the first token call, past the earliest refresh (%s): raise SCALE_TOKEN_LIFETIME",
			cfg.n, time.Since(firstCall).Round(time.Second), cfg.lifetime*6/10)
	}

	// One refresh wave: every Secret gets a new token once.
	waveStart := rec.mark()
	windowFrom := time.Now()
	before := map[string]string{}
	rec.mu.Lock()
	for k, tok := range rec.tokens {
		before[k] = tok
	}
	rec.mu.Unlock()
	callsBefore = len(ts.Calls())
	waveWait := time.Until(firstCall.Add(cfg.lifetime)) + readyWait
	rewritten := func(r *recorder) int {
		n := 0
		for k, tok := range r.tokens {
			if tok != "" && tok != before[k] {
				n++
			}
		}
		return n
	}
	// A short wave is a result the caller checks (res.waveRewritten), not
	// an abort: the run goes on to the phases after it.
	if !rec.waitFor(ctx, waveWait, func(r *recorder) bool { return rewritten(r) >= cfg.n }) {
		logf("N=%d: the refresh wave did not rewrite every Secret within %s", cfg.n, waveWait.Round(time.Second))
	}
	settle(ctx, rec)
	rec.mu.Lock()
	res.waveRewritten = rewritten(rec)
	rec.mu.Unlock()
	secrets, trs = rec.since(waveStart)
	calls := ts.Calls()[callsBefore:]
	res.waveCalls = len(calls)
	res.waveSecretWrites, res.waveTRWrites = len(secrets), count(trs, watch.Modified)
	perSecret := map[string]int{}
	for _, e := range secrets {
		perSecret[e.key]++
	}
	for _, n := range perSecret {
		res.waveMaxPerSecret = max(res.waveMaxPerSecret, n)
	}
	var times []time.Time
	for _, e := range secrets {
		times = append(times, e.at)
	}
	res.peakWritesPerSec = peakPerSecond(times)
	res.peakCallsPerSec = peakPerSecond(calls)
	if len(times) > 0 {
		first := times[0]
		if len(calls) > 0 && calls[0].Before(first) {
			first = calls[0]
		}
		res.waveDuration = times[len(times)-1].Sub(first)
	}
	text, err = mgr.Scrape(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	res.waveRoundTrips = subtract(byLabel(text, "rest_client_requests_total", "method", nil), res.restartRoundTrips)
	res.waveCodes = subtract(byLabel(text, "rest_client_requests_total", "code", nil), res.restartCodes)
	logf("N=%d: refresh wave %s after the first token call, window of %s from %s: %d token calls, %d Secret writes, %d TokenRequest writes",
		cfg.n, time.Since(firstCall).Round(time.Second), res.waveDuration.Round(time.Millisecond), windowFrom.Format(time.TimeOnly), res.waveCalls, res.waveSecretWrites, res.waveTRWrites)

	if cfg.unrelated > 0 {
		res.unrelated = cfg.unrelated
		unrelatedSecretsGrowth(ctx, tb, c, ts, pprofAddr, res)
		logf("N=%d: %d unrelated Secrets, seen %s after the first create: Go heap after GC %s before, %s after",
			cfg.n, cfg.unrelated, res.unrelatedSeen.Round(time.Millisecond), mib1(res.heapBefore), mib1(res.heapAfter))
	}
	notePeak(tb, res, mgr)

	for _, p := range logs {
		res.throttleLines += strings.Count(p.Log.String(), "client-side throttling")
	}
	res.refusedCalls = ts.Refused()
	if errs := rec.errors(); len(errs) > 0 {
		tb.Errorf("watch errors: %v", errs)
	}
	return res
}

// notePeak adds the VmHWM of p, a manager process of this run, to res.
func notePeak(tb testing.TB, res *result, p *managerproc.Process) {
	peak, err := p.PeakRSS()
	if err != nil {
		tb.Fatal(err)
	}
	res.processPeaks = append(res.processPeaks, peak)
	res.peakRSS = max(res.peakRSS, peak)
}

// readySeries counts the token_operator_token_ready series of TokenRequests
// in namespaces.
func readySeries(text string, namespaces []string) int {
	n := 0
	for _, ns := range namespaces {
		n += len(byLabel(text, "token_operator_token_ready", "name", map[string]string{"namespace": ns}))
	}
	return n
}

// unrelatedSecretsGrowth creates res.unrelated Secrets of 1 KiB no
// TokenRequest uses, in a namespace of their own, and records the manager's
// Go heap after a forced GC before them and once the manager has seen the
// last of them. The signal that it has: a probe TokenRequest whose
// credential lacks consent for the token service gets consent after the
// last create; the manager reads that credential afresh only when its
// metadata watch on Secrets, the one that delivers the unrelated Secrets in
// resourceVersion order, reports the new version.
func unrelatedSecretsGrowth(ctx context.Context, tb testing.TB, c client.Client, ts *tokenServer, pprofAddr string, res *result) {
	ns := namespace(ctx, tb, c, "scale-unrelated-")
	ts.addClient("scale-probe", "scale-probe-secret-0123456789abcdef")
	cred := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe-cred"},
		StringData: map[string]string{"clientSecret": "scale-probe-secret-0123456789abcdef"}}
	if err := c.Create(ctx, cred); err != nil {
		tb.Fatal(err)
	}
	probe := tokenRequest(ns, 0, ts.TokenURL())
	probe.Name, probe.Spec.ClientID, probe.Spec.Credential.ClientSecret.Name = "probe", "scale-probe", cred.Name
	if err := c.Create(ctx, probe); err != nil {
		tb.Fatal(err)
	}
	key := client.ObjectKeyFromObject(probe)
	// Refused for want of consent, at the probe's generation.
	waitProbe(ctx, tb, c, key, metav1.ConditionFalse)
	before, err := heapAfterGC(ctx, pprofAddr)
	if err != nil {
		tb.Fatal(err)
	}
	payload := make([]byte, 1024)
	start := time.Now()
	parallel(tb, res.unrelated, func(i int) error {
		return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("unrelated-%05d", i)}, Data: map[string][]byte{"data": payload}})
	})
	cred.Annotations = map[string]string{v1.AnnotationAllowedIssuers: ts.Host()}
	if err := c.Update(ctx, cred); err != nil {
		tb.Fatal(err)
	}
	waitProbe(ctx, tb, c, key, metav1.ConditionTrue)
	res.unrelatedSeen = time.Since(start)
	after, err := heapAfterGC(ctx, pprofAddr)
	if err != nil {
		tb.Fatal(err)
	}
	res.heapBefore, res.heapAfter = before, after
}

// waitProbe waits up to five minutes for the probe's Ready condition to
// have status at its current generation.
func waitProbe(ctx context.Context, tb testing.TB, c client.Client, key client.ObjectKey, status metav1.ConditionStatus) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var tr v1.TokenRequest
		if err := c.Get(ctx, key, &tr); err != nil {
			tb.Fatal(err)
		}
		cond := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady)
		if cond != nil && cond.Status == status && cond.ObservedGeneration == tr.Generation {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the probe TokenRequest is not Ready=%s after five minutes: %+v", status, tr.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var heapAllocRE = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)$`)

// heapAfterGC is the manager's live Go heap (HeapAlloc) right after a
// garbage collection, which the heap profile's gc=1 forces.
func heapAfterGC(ctx context.Context, pprofAddr string) (int64, error) {
	body, err := managerproc.Get(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	m := heapAllocRE.FindStringSubmatch(body)
	if m == nil {
		return 0, errors.New("no HeapAlloc in the heap profile")
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// operatorFloor creates n TokenRequests in a namespace of their own, and
// for each an output Secret like the operator's and a status update like
// the operator's (Ready, expiry, Secret name), by writers goroutines with
// the plain client c, and returns how long that took. It deletes the
// objects and waits until they are gone, so that a manager started later
// never sees them.
func operatorFloor(ctx context.Context, tb testing.TB, c client.Client, n int, tokenURL string, lifetime time.Duration, tokenSize int) time.Duration {
	ns := namespace(ctx, tb, c, "scale-operator-floor-")
	d := parallel(tb, n, func(i int) error {
		tr := tokenRequest(ns, i, tokenURL)
		if err := c.Create(ctx, tr); err != nil {
			return err
		}
		now := time.Now()
		expires := now.Add(lifetime)
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: tr.Name,
				Labels:          map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelTokenRequest: tr.Name},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(tr, v1.GroupVersion.WithKind("TokenRequest"))},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{
				v1.KeyAccessToken: []byte(accessToken(tokenSize)), // as long as the token service's
				v1.KeyTokenType:   []byte("Bearer"),
				v1.KeyExpiresAt:   []byte(expires.UTC().Format(time.RFC3339)),
			},
		}
		if err := c.Create(ctx, s); err != nil {
			return err
		}
		tr.Status = v1.TokenRequestStatus{
			Conditions: []metav1.Condition{
				{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonIssued, Message: "the Secret holds a token", ObservedGeneration: tr.Generation, LastTransitionTime: metav1.NewTime(now)},
				{Type: v1.ConditionReconciling, Status: metav1.ConditionFalse, Reason: v1.ReasonIssued, ObservedGeneration: tr.Generation, LastTransitionTime: metav1.NewTime(now)},
				{Type: v1.ConditionStalled, Status: metav1.ConditionFalse, Reason: v1.ReasonIssued, ObservedGeneration: tr.Generation, LastTransitionTime: metav1.NewTime(now)},
			},
			SecretName:         s.Name,
			TokenType:          "Bearer",
			Scopes:             tr.Spec.Scopes,
			ExpiresAt:          ptr(metav1.NewTime(expires)),
			RefreshAt:          ptr(metav1.NewTime(now.Add(lifetime * 2 / 3))),
			LastRefreshTime:    ptr(metav1.NewTime(now)),
			ObservedGeneration: tr.Generation,
		}
		return c.Status().Update(ctx, tr)
	})
	if err := c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns)); err != nil {
		tb.Fatal(err)
	}
	if err := c.DeleteAllOf(ctx, &v1.TokenRequest{}, client.InNamespace(ns)); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var secrets corev1.SecretList
		var trs v1.TokenRequestList
		if err := c.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
			tb.Fatal(err)
		}
		if err := c.List(ctx, &trs, client.InNamespace(ns)); err != nil {
			tb.Fatal(err)
		}
		if len(secrets.Items) == 0 && len(trs.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the operator floor's objects are not gone after a minute: %d Secrets, %d TokenRequests left", len(secrets.Items), len(trs.Items))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return d
}

func ptr[T any](v T) *T { return &v }

func clientID(k int) string     { return fmt.Sprintf("scale-client-%02d", k) }
func clientSecret(k int) string { return fmt.Sprintf("scale-secret-%02d-0123456789abcdef", k) }

func tokenRequest(ns string, i int, tokenURL string) *v1.TokenRequest {
	k := i % credentials
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("tr-%05d", i)},
		Spec: v1.TokenRequestSpec{
			TokenURL:   tokenURL,
			ClientID:   clientID(k),
			Scopes:     []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "cred"}},
		},
	}
}

func namespace(ctx context.Context, tb testing.TB, c client.Client, prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	if err := c.Create(ctx, ns); err != nil {
		tb.Fatal(err)
	}
	return ns.Name
}

// parallel runs do(0) … do(n-1) on writers goroutines and returns how long
// that took.
func parallel(tb testing.TB, n int, do func(i int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if first != nil {
		tb.Error(first)
	}
	return d
}

// settle waits until no watch event arrived for quiet (at most a minute).
func settle(ctx context.Context, rec *recorder) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if last := rec.lastEvent(); time.Since(last) >= quiet {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// save writes the body of a GET on url to path.
func save(ctx context.Context, tb testing.TB, url, path string) {
	body, err := managerproc.Get(ctx, url)
	if err != nil {
		tb.Errorf("profile %s: %v", url, err)
		return
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		tb.Error(err)
	}
}

func count(events []event, typ watch.EventType) int {
	n := 0
	for _, e := range events {
		if e.typ == typ {
			n++
		}
	}
	return n
}

// peakPerSecond is the most of times that fall into one wall-clock second.
func peakPerSecond(times []time.Time) int {
	buckets := map[int64]int{}
	peak := 0
	for _, t := range times {
		buckets[t.Unix()]++
		peak = max(peak, buckets[t.Unix()])
	}
	return peak
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)`)
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// byLabel sums the samples of metric whose labels include match, by the
// value of label.
func byLabel(text, metric, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		m := sampleRE.FindStringSubmatch(line)
		if m == nil || m[1] != metric {
			continue
		}
		labels := map[string]string{}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if ok && err == nil {
			out[labels[label]] += v
		}
	}
	return out
}

func sum(text, metric string, match map[string]string) float64 {
	total := 0.0
	for _, v := range byLabel(text, metric, "", match) {
		total += v
	}
	return total
}

func subtract(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// perObject renders counts divided by n, by key, sorted.
func perObject(m map[string]float64, n int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	total := 0.0
	for _, k := range keys {
		total += m[k]
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]/float64(n)))
	}
	return fmt.Sprintf("%.2f (%s)", total/float64(n), strings.Join(parts, ", "))
}
