package tokenrequest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/renewal"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Reconciler turns TokenRequests into Secrets holding fresh tokens.
type Reconciler struct {
	// Client reads TokenRequests and the operator's own Secrets from the cache.
	Client client.Client
	// APIReader reads credential Secrets directly, so their data is never cached.
	APIReader client.Reader
	// Metadata reads cached object metadata (namespace labels); SetupWithManager sets it.
	Metadata client.Reader
	// MaxSecretBytes is the most an output Secret of ours holds (see
	// MaxOwnSecretBytes); a larger Secret in the way is a conflict.
	MaxSecretBytes int
	// ClusterResourceNamespace holds the credentials of ClusterTokenIssuers.
	ClusterResourceNamespace string
	// Resolver finds each TokenRequest's issuer and credential.
	Resolver *resolve.Resolver
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Tokens   TokenService
	Clock    clock.PassiveClock
	Metrics  *metrics.Collectors
	// MinRemaining is the validity a refreshed Secret keeps at least, for kubelet to propagate it.
	MinRemaining time.Duration
	// MinRefreshInterval is the shortest time from a token's issue to its
	// planned refresh (at most half its lifetime): no stale hint or odd
	// renewal setting can make a TokenRequest call its token service in a loop.
	MinRefreshInterval time.Duration
	// NoRolloutRestarts refuses spec.rolloutRestartTargets
	// (--enable-rollout-restarts=false), for an install whose RBAC grants
	// no workload patch.
	NoRolloutRestarts bool

	// slots bounds each namespace's token calls under way (nil: no bound).
	slots *tokensource.CallSlots
	// rate bounds each namespace's token calls per second (nil: no bound).
	rate *tokensource.CallRate
	// restarts rate-limits rollout restarts per workload.
	restarts restartLimiter
	// retryNotBefore remembers Retry-After answers (namespace/name → time).
	retryNotBefore sync.Map
	// pendingEvents holds each reconcile's events (*v1.TokenRequest → []pendingEvent).
	pendingEvents sync.Map
	// replaced remembers the resourceVersion each status patch replaced
	// (namespace/name → replacedVersion), to tell a cache that is behind.
	replaced sync.Map
}

// TokenService hands out tokens for TokenRequests. user names the
// TokenRequest (namespace/name) so that tokens nobody uses are dropped.
type TokenService interface {
	Token(ctx context.Context, user string, req tokensource.Request, fresh func(tokensource.Token) bool) (tokensource.Token, error)
	// Cached returns a token fresh accepts only if one is at hand, never calling out.
	Cached(user string, req tokensource.Request, fresh func(tokensource.Token) bool) (tokensource.Token, bool)
	Forget(user string)
	// Validate refuses, before any call, what the operator's own policy
	// forbids: plain-http endpoints, issuer hosts outside its ceiling.
	Validate(req tokensource.Request) error
}

// replacedVersion is a TokenRequest version a status patch made outdated.
type replacedVersion struct {
	resourceVersion string
	at              time.Time
}

// cacheWaitLimit is how long a reconcile waits for the cache to show its
// own status patch before it decides from what the cache has.
const cacheWaitLimit = 5 * time.Second

// +kubebuilder:rbac:groups=tokens.token-operator.io,resources=tokenrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=tokens.token-operator.io,resources=tokenrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.token-operator.io,resources=tokenrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=patch

// Reconcile brings one TokenRequest's Secret and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tr := &v1.TokenRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, tr); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !tr.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if r.cacheBehind(req.NamespacedName, tr) {
		// The Secret written by the last pass woke us before the status
		// patch reached the cache: deciding now would be refused anyway.
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	orig := tr.DeepCopy()
	res, err := r.reconcile(ctx, tr)
	perr := r.patchStatus(ctx, orig, tr)
	r.flushEvents(tr, perr == nil)
	if perr != nil {
		if apierrors.IsConflict(perr) {
			// The cache served an older TokenRequest than the one we last
			// wrote: decide again from a fresh copy instead of overwriting it.
			log.FromContext(ctx).V(1).Info("status changed underneath, deciding again")
			return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
		if err == nil {
			err = perr
		}
	}
	return res, err
}

// cacheBehind reports whether the cache still serves the version that this
// operator's last status patch of tr replaced, for at most cacheWaitLimit.
func (r *Reconciler) cacheBehind(nn types.NamespacedName, tr *v1.TokenRequest) bool {
	v, ok := r.replaced.Load(nn)
	if !ok {
		return false
	}
	rv := v.(replacedVersion)
	if rv.resourceVersion == tr.ResourceVersion && r.Clock.Since(rv.at) < cacheWaitLimit {
		return true
	}
	r.replaced.Delete(nn)
	return false
}

func (r *Reconciler) forget(nn types.NamespacedName) {
	r.replaced.Delete(nn)
	r.Tokens.Forget(nn.String())
	r.Metrics.Forget(nn.Namespace, nn.Name)
	r.retryNotBefore.Delete(nn.String())
}

// reconcile runs gather → decide → act on tr, updating tr.Status in memory.
// A plan that needs a token gets it, and decide runs again with the answer.
func (r *Reconciler) reconcile(ctx context.Context, tr *v1.TokenRequest) (ctrl.Result, error) {
	o, treq, err := r.gather(ctx, tr)
	if err != nil {
		return ctrl.Result{}, err
	}
	p := decide(o)
	log.FromContext(ctx).V(1).Info("decided", "action", p.action.String(), "why", p.why, "call", p.call)
	if p.call {
		o.fetched = r.fetch(ctx, tr, o, p, treq)
		p = decide(o)
	}
	res, err := r.act(ctx, tr, o, p)
	r.recordMetrics(tr)
	return res, err
}

// gather reads the output Secret and the credential into an observed.
func (r *Reconciler) gather(ctx context.Context, tr *v1.TokenRequest) (observed, tokensource.Request, error) {
	o := observed{
		now:        r.Clock.Now(),
		tr:         tr,
		secretName: index.OutputSecretName(tr),
		policy:     r.policy(tr),
	}
	if t, ok := r.retryNotBefore.Load(client.ObjectKeyFromObject(tr).String()); ok {
		o.retryNotBefore = t.(time.Time)
	}
	secret, err := r.outputSecret(ctx, tr.Namespace, o.secretName)
	if err != nil {
		return o, tokensource.Request{}, err
	}
	o.output = secret
	if prev := tr.Status.SecretName; prev != "" && prev != o.secretName {
		if o.former, err = r.outputSecret(ctx, tr.Namespace, prev); err != nil {
			return o, tokensource.Request{}, err
		}
		if o.former != nil && cachedWithoutData(o.former) != "" {
			o.former = nil // larger than ours: left as it is
		}
	}
	if secret != nil {
		o.tooLarge = cachedWithoutData(secret) == withoutDataTooLarge
		o.foreign = o.tooLarge || !mayWrite(secret, tr)
		state := secretdata.Read(secret)
		if !managedBy(secret, tr) {
			state = secretdata.State{} // an adoptable Secret holds no token of ours
		}
		o.secret = &state
	}
	res, credErr := r.Resolver.Resolve(ctx, tr)
	o.from, o.clientID = res.Source, res.ClientID
	treq, credVersion, credIdentity := res.Request, res.Version, res.Identity
	if credErr == nil {
		credErr = checkTemplate(tr)
	}
	if credErr == nil {
		credErr = r.checkRestarts(tr)
	}
	if credErr != nil && !errors.As(credErr, &o.credErr) {
		return o, treq, credErr // an API error: retry with backoff
	}
	o.credentialOK = credErr == nil
	if o.credentialOK {
		o.inputHash = res.InputHash()
		o.legacyInputHash = treq.CacheKey()
		attempt := o.inputHash
		if credIdentity != credVersion {
			attempt += "|" + credVersion // a rotated issuer credential retries a failure at once
		}
		o.attemptHash = hashAttempt(attempt, treq.AllowedHosts)
		if treq.Exchange != nil {
			o.subjectExpires = treq.Exchange.Subject.Expires
		}
	}
	return o, treq, nil
}

func (r *Reconciler) policy(tr *v1.TokenRequest) renewal.Policy {
	p := renewal.Policy{
		RenewBeforePercentage: tr.Spec.RenewBeforePercentage,
		MinRemaining:          r.MinRemaining,
		MinInterval:           r.MinRefreshInterval,
		JitterSeed:            client.ObjectKeyFromObject(tr).String(),
	}
	if tr.Spec.RenewBefore != nil {
		d := tr.Spec.RenewBefore.Duration
		p.RenewBefore = &d
	}
	return p
}

// outputSecret reads the output Secret: from the cache of the operator's own
// Secrets, else directly (a foreign Secret, or one not cached yet).
func (r *Reconciler) outputSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, key, s)
	direct := false
	switch {
	case err == nil && cachedWithoutData(s) == withoutDataUnclaimed:
		// Cached before this TokenRequest wanted the name: read it whole.
		s, direct = &corev1.Secret{}, true
		err = r.APIReader.Get(ctx, key, s)
	case apierrors.IsNotFound(err):
		direct = true
		err = r.readUnmanagedSecret(ctx, key, s)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if direct {
		delete(s.Annotations, annotationCachedWithoutData) // only the cache sets it
	}
	if cachedWithoutData(s) == "" && secretBytes(s) > r.maxSecretBytes() {
		return withoutData(s, withoutDataTooLarge), nil
	}
	return s, nil
}

// maxSecretBytes is the most an output Secret of this operator holds; a
// larger one is not ours, whatever its labels say.
func (r *Reconciler) maxSecretBytes() int {
	if r.MaxSecretBytes > 0 {
		return r.MaxSecretBytes
	}
	return MaxOwnSecretBytes(0)
}

// readUnmanagedSecret reads a Secret the managed cache does not hold. The
// metadata cache says first whether one exists at all, so that a new
// TokenRequest costs no direct read.
func (r *Reconciler) readUnmanagedSecret(ctx context.Context, key types.NamespacedName, s *corev1.Secret) error {
	if r.Metadata != nil {
		if err := r.Metadata.Get(ctx, key, metadataOf("Secret")); apierrors.IsNotFound(err) {
			return err
		}
	}
	return r.APIReader.Get(ctx, key, s)
}

// checkTemplate refuses a secret template outside the allowed subset before
// any call to the token service; the message names the key, never a value.
func checkTemplate(tr *v1.TokenRequest) error {
	if err := secretdata.ValidateTemplate(tr.Spec.SecretTemplate); err != nil {
		return &resolve.Refusal{Reason: v1.ReasonInvalidTemplate, Message: err.Error()}
	}
	return nil
}

// checkRestarts refuses rollout restart targets when restarts are turned
// off, before any token call: a new token the workload never reads is no
// better than none.
func (r *Reconciler) checkRestarts(tr *v1.TokenRequest) error {
	if !r.NoRolloutRestarts || len(tr.Spec.RolloutRestartTargets) == 0 {
		return nil
	}
	return &resolve.Refusal{Reason: v1.ReasonRolloutRestartsDisabled, Message: "spec.rolloutRestartTargets asks for rollout restarts, " +
		"but this operator runs with --enable-rollout-restarts=false and may not patch workloads; remove the targets " +
		"(and have the workload re-read the mounted Secret) or ask the cluster administrator"}
}

// fetch gets the token a plan asked for: from the shared cache, or from
// the token service when one of the namespace's call slots is free.
func (r *Reconciler) fetch(ctx context.Context, tr *v1.TokenRequest, o observed, p plan, treq tokensource.Request) *fetched {
	user, fresh := client.ObjectKeyFromObject(tr).String(), r.freshness(o, p)
	if tok, hit := r.Tokens.Cached(user, treq, fresh); hit {
		return &fetched{token: tok}
	}
	now := r.Clock.Now()
	release, busySince := r.slots.TryAcquire(tr.Namespace, now)
	if release == nil {
		log.FromContext(ctx).V(1).Info("the namespace's token calls are all under way; trying again shortly")
		return &fetched{noSlot: true, busySince: busySince, retryIn: tokensource.SlotRetryDelay(), busyMessage: r.slots.BusyMessage()}
	}
	defer release()
	if ok, retryAt, limitedSince := r.rate.Take(tr.Namespace, user, now); !ok {
		log.FromContext(ctx).V(1).Info("the namespace's token-call rate is used up; waiting for a turn", "at", retryAt.UTC())
		return &fetched{noSlot: true, busySince: limitedSince, retryIn: retryAt.Sub(now), busyMessage: r.rate.BusyMessage()}
	}
	tok, err := r.Tokens.Token(ctx, user, treq, fresh)
	if err != nil {
		err = o.from.Explain(err, treq)
		reason, _, _ := classify(err)
		log.FromContext(ctx).Info("getting a token failed", "reason", reason, "error", err.Error(), "attempt", tr.Status.FailedAttempts+1)
	}
	return &fetched{token: tok, err: err}
}

// act carries out a plan: the Secret, the former Secret, the restarts, and
// the status and events that Reconcile saves.
func (r *Reconciler) act(ctx context.Context, tr *v1.TokenRequest, o observed, p plan) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if err := r.writeSecret(ctx, p.write); err != nil {
		return ctrl.Result{}, err
	}
	if t := p.written; t != nil && p.write != nil {
		logger.Info("secret written", "secret", o.secretName, "why", p.why, "expiresAt", t.ExpiresAt.UTC(), "refreshAt", t.RefreshAt.UTC())
	}
	if err := leaveFormer(ctx, r.Client, p); err != nil {
		return ctrl.Result{}, err
	}
	if !p.retryNotBefore.IsZero() {
		r.retryNotBefore.Store(o.policy.JitterSeed, p.retryNotBefore)
	}
	tr.Status = p.status
	for _, e := range p.events {
		r.event(tr, e.eventType, e.reason, e.message)
	}
	res := resultAt(o.now, p.requeueAt)
	if len(p.restarts) > 0 && !r.NoRolloutRestarts {
		owed, events := r.restarts.restartOwed(ctx, r.Client, tr, o.now)
		for _, e := range events {
			r.event(tr, e.eventType, e.reason, e.message)
		}
		res = soonest(res, owed)
	}
	return res, nil
}

// freshness says which tokens from the shared cache this TokenRequest accepts.
func (r *Reconciler) freshness(o observed, p plan) func(tokensource.Token) bool {
	var notBefore time.Time
	if p.newer && o.secret != nil {
		notBefore = o.secret.IssuedAt
	}
	return func(t tokensource.Token) bool {
		if !notBefore.IsZero() && !t.IssuedAt.After(notBefore) {
			return false
		}
		return o.now.Before(renewal.RefreshTime(t.IssuedAt, t.ExpiresAt, t.RefreshAt, o.policy))
	}
}

func hashAttempt(inputHash string, allowed []string) string {
	sum := sha256.Sum256([]byte(inputHash + "|" + strings.Join(allowed, ",")))
	return hex.EncodeToString(sum[:16])
}

// writeSecret creates, updates or replaces the output Secret as planned.
func (r *Reconciler) writeSecret(ctx context.Context, w *secretWrite) error {
	if w == nil {
		return nil
	}
	if old := w.replace; old != nil {
		if err := r.Client.Delete(ctx, old, client.Preconditions{UID: &old.UID}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if w.create {
		return r.Client.Create(ctx, w.secret)
	}
	return r.Client.Update(ctx, w.secret)
}

func (r *Reconciler) patchStatus(ctx context.Context, orig, tr *v1.TokenRequest) error {
	if equality.Semantic.DeepEqual(orig.Status, tr.Status) {
		return nil
	}
	err := r.Client.Status().Patch(ctx, tr, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		r.replaced.Store(client.ObjectKeyFromObject(tr), replacedVersion{resourceVersion: orig.ResourceVersion, at: r.Clock.Now()})
	}
	return err
}

func (r *Reconciler) recordMetrics(tr *v1.TokenRequest) {
	var expires, refresh time.Time
	if tr.Status.ExpiresAt != nil {
		expires = tr.Status.ExpiresAt.Time
	}
	if tr.Status.RefreshAt != nil {
		refresh = tr.Status.RefreshAt.Time
	}
	r.Metrics.SetToken(tr.Namespace, tr.Name, expires, refresh, isReady(tr))
	r.Metrics.SetTokenProblem(tr.Namespace, tr.Name, problemReason(tr))
}

// event queues an event for tr. Events are sent only once the status write
// succeeds, so a reconcile that read a stale TokenRequest and is refused
// does not announce what it then does not record.
func (r *Reconciler) event(tr *v1.TokenRequest, eventType, reason, message string) {
	queued, _ := r.pendingEvents.Load(tr)
	list, _ := queued.([]pendingEvent)
	r.pendingEvents.Store(tr, append(list, pendingEvent{eventType, reason, message}))
}

// flushEvents sends (send true) or drops the events queued for tr.
func (r *Reconciler) flushEvents(tr *v1.TokenRequest, send bool) {
	queued, ok := r.pendingEvents.LoadAndDelete(tr)
	if !ok || !send || r.Recorder == nil {
		return
	}
	for _, e := range queued.([]pendingEvent) {
		r.Recorder.Eventf(tr, nil, e.eventType, e.reason, e.reason, "%s", e.message)
	}
}

// soonest is the result that comes back first; a zero RequeueAfter means never.
func soonest(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		return b
	}
	return a
}

// resultAt asks to be called again at t (zero: only on events).
func resultAt(now, t time.Time) ctrl.Result {
	if t.IsZero() {
		return ctrl.Result{}
	}
	d := t.Sub(now)
	if d < time.Second {
		d = time.Second
	}
	return ctrl.Result{RequeueAfter: d}
}
