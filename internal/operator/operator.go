// Package operator assembles the manager: caches, the token engine, the
// shared token cache, the reconciler, probes and metrics.
package operator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/controller/issuer"
	"github.com/token-operator/token-operator/internal/controller/tokenrequest"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/tokencache"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Options are the manager's settings; cmd/manager fills them from flags.
type Options struct {
	MetricsBindAddress string
	// MetricsSecure serves metrics over HTTPS behind TokenReview and
	// SubjectAccessReview; false is plain HTTP.
	MetricsSecure bool
	// MetricsCertPath is a directory holding the metrics server's
	// certificate (MetricsCertName) and key (MetricsCertKey), reloaded when
	// they change; empty: a self-signed certificate made at start.
	MetricsCertPath, MetricsCertName, MetricsCertKey string
	// EnableHTTP2 lets the metrics server negotiate HTTP/2, off against the
	// HTTP/2 Rapid Reset and Stream Cancellation attacks (CVE-2023-44487,
	// CVE-2023-39325).
	EnableHTTP2            bool
	HealthProbeBindAddress string
	// PprofBindAddress serves net/http/pprof for profiling; empty is off.
	PprofBindAddress        string
	LeaderElection          bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	// Namespaces limits the operator to these namespaces; empty means all.
	Namespaces []string
	// WatchLabelSelector limits the operator to the TokenRequests it
	// matches (sharding); empty means all. Each shard elects its own leader.
	WatchLabelSelector string
	// KubeAPIQPS and KubeAPIBurst set the client's rate limit towards the
	// API server (API Priority and Fairness still applies on the server).
	KubeAPIQPS              float32
	KubeAPIBurst            int
	MaxConcurrentReconciles int
	// MaxTokenCallsPerNamespace bounds the token calls one namespace has
	// under way, so a stalled token service holds only that many workers.
	MaxTokenCallsPerNamespace int
	// TokenCallsPerNamespacePerSecond and TokenCallBurstPerNamespace are
	// each namespace's token bucket on calls to token services, so that
	// many TokenRequests cannot storm a client they share (0: no bound).
	TokenCallsPerNamespacePerSecond float64
	TokenCallBurstPerNamespace      int
	TokenRequestTimeout             time.Duration
	// MinRefreshInterval is the shortest time from a token's issue to its
	// refresh (at most half its lifetime), against refresh storms.
	MinRefreshInterval time.Duration
	// AllowHTTPLoopback lets credentials go to plain-http token services on
	// localhost, 127.0.0.1 or [::1] (development and tests only).
	AllowHTTPLoopback bool
	// AllowedIssuerHosts is the operator-wide ceiling on token hosts
	// ("host", "host:port", "*.example.com"); empty means no ceiling.
	AllowedIssuerHosts []string
	// AllowedServiceAccountAudiences is the operator-wide ceiling on the
	// audiences of minted service-account tokens (exact, or a prefix and
	// "*"); empty means no ceiling. The API server's own are always refused.
	AllowedServiceAccountAudiences []string
	MinRemainingLifetime           time.Duration
	// MaxTokenBytes is the largest token (access_token plus token_type)
	// stored; a larger one is refused with TokenTooLarge.
	MaxTokenBytes int64
	// ClusterResourceNamespace holds the credentials of ClusterTokenIssuers.
	ClusterResourceNamespace string
	// CountIssuerRequests writes each issuer's TokenRequest count; a shard
	// sees only its own TokenRequests, so one instance should do it.
	CountIssuerRequests bool
	// EnableServiceAccountCredentials lets TokenRequests and issuers use a
	// ServiceAccount credential (serviceaccounts/token create); off, they
	// are refused with ServiceAccountCredentialsDisabled.
	EnableServiceAccountCredentials bool
	// EnableRolloutRestarts lets TokenRequests name rollout restart targets
	// (apps patch); off, they are refused with RolloutRestartsDisabled.
	EnableRolloutRestarts bool
	// CABundleFiles are PEM files of extra CAs trusted for token endpoints.
	CABundleFiles []string
	// RootCAs replaces the system roots plus CABundleFiles when set (tests).
	RootCAs *x509.CertPool
	Clock   clock.Clock
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool
}

// Defaults are the documented flag defaults.
func Defaults() Options {
	return Options{
		MetricsBindAddress:              ":8443",
		MetricsSecure:                   true,
		MetricsCertName:                 "tls.crt",
		MetricsCertKey:                  "tls.key",
		HealthProbeBindAddress:          ":8081",
		LeaderElectionID:                DefaultLeaderElectionID,
		KubeAPIQPS:                      500,
		KubeAPIBurst:                    1000,
		MaxConcurrentReconciles:         16,
		MaxTokenCallsPerNamespace:       2,
		TokenCallsPerNamespacePerSecond: 20,
		TokenCallBurstPerNamespace:      100,
		TokenRequestTimeout:             30 * time.Second,
		MinRemainingLifetime:            2 * time.Minute,
		MinRefreshInterval:              30 * time.Second,
		MaxTokenBytes:                   tokensource.DefaultMaxTokenBytes,
		CountIssuerRequests:             true,
		EnableServiceAccountCredentials: true,
		EnableRolloutRestarts:           true,
		Clock:                           clock.RealClock{},
	}
}

// DefaultLeaderElectionID is the Lease of an unsharded operator.
const DefaultLeaderElectionID = "token-operator.tokens.token-operator.io"

// leaderElectionID gives each shard its own Lease unless one was named.
func leaderElectionID(o Options) string {
	if o.WatchLabelSelector == "" || o.LeaderElectionID != DefaultLeaderElectionID {
		return o.LeaderElectionID
	}
	sum := sha256.Sum256([]byte(o.WatchLabelSelector))
	return "shard-" + hex.EncodeToString(sum[:6]) + "." + DefaultLeaderElectionID
}

// NewManager returns a manager with the TokenRequest controller set up.
func NewManager(ctx context.Context, cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	shard, err := labels.Parse(o.WatchLabelSelector)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	if o.KubeAPIQPS > 0 {
		cfg.QPS, cfg.Burst = o.KubeAPIQPS, max(o.KubeAPIBurst, int(o.KubeAPIQPS))
	}
	roots, err := rootCAs(o)
	if err != nil {
		return nil, err
	}
	if err := tokensource.ValidateAllowedIssuerHosts(o.AllowedIssuerHosts); err != nil {
		return nil, fmt.Errorf("--allowed-issuer-hosts: %w", err)
	}
	if err := resolve.ValidateAllowedAudiences(o.AllowedServiceAccountAudiences); err != nil {
		return nil, fmt.Errorf("--allowed-service-account-audiences: %w", err)
	}
	scheme := NewScheme()
	namespaces := map[string]cache.Config{}
	for _, ns := range o.Namespaces {
		namespaces[ns] = cache.Config{}
	}
	metricsOpts, certWatcher, err := metricsServerOptions(o)
	if err != nil {
		return nil, err
	}
	// The own-Secret cache asks the TokenRequest cache which Secrets are
	// wanted; that cache exists once the manager does, before either starts.
	var requests client.Reader
	claimed := func(namespace, name string) bool { return tokenrequest.OutputClaims(requests)(namespace, name) }
	maxSecretBytes := tokenrequest.MaxOwnSecretBytes(o.MaxTokenBytes)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		PprofBindAddress:              o.PprofBindAddress,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              leaderElectionID(o),
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    ctrlConfig(o),
		Cache: cache.Options{
			DefaultNamespaces: namespaces,
			DefaultTransform:  tokenrequest.StripForCache,
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {
					Label:     labels.SelectorFromSet(tokenrequest.ManagedSecretSelector()),
					Transform: tokenrequest.OwnSecretTransform(claimed, maxSecretBytes),
				},
				&tokensv1alpha1.TokenRequest{}: {Label: shard},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	requests = mgr.GetCache()
	if certWatcher != nil {
		if err := mgr.Add(certWatcher); err != nil {
			return nil, err
		}
	}
	metaNamespaces := namespaces
	if len(namespaces) > 0 && o.ClusterResourceNamespace != "" {
		// ClusterTokenIssuers' credentials: watched for rotation too.
		metaNamespaces = maps.Clone(namespaces)
		metaNamespaces[o.ClusterResourceNamespace] = cache.Config{}
	}
	secretMeta, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: scheme, Mapper: mgr.GetRESTMapper(), DefaultNamespaces: metaNamespaces, DefaultTransform: tokenrequest.StripForCache,
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: tokenrequest.UnmanagedSecretSelector(), Transform: tokenrequest.KeepSecretIdentity}},
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(secretMeta); err != nil {
		return nil, err
	}
	recorder, err := newEventRecorder(ctx, cfg, scheme)
	if err != nil {
		return nil, err
	}
	m := metrics.Default()
	engine := tokensource.New(tokensource.Options{
		RootCAs: roots, Timeout: o.TokenRequestTimeout, Clock: o.Clock,
		AllowHTTPLoopback: o.AllowHTTPLoopback, AllowedIssuerHosts: o.AllowedIssuerHosts,
		MaxTokenBytes: o.MaxTokenBytes,
	})
	discoverAudiences, err := resolve.APIServerAudiences(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, err
	}
	tokens := tokencache.NewSharedTokens(engine, o.Clock, o.TokenRequestTimeout, m)
	r := &tokenrequest.Reconciler{
		Client:                   mgr.GetClient(),
		APIReader:                mgr.GetAPIReader(),
		Scheme:                   scheme,
		Recorder:                 recorder,
		Tokens:                   tokens,
		Clock:                    o.Clock,
		Metrics:                  m,
		MaxSecretBytes:           maxSecretBytes,
		MinRemaining:             o.MinRemainingLifetime,
		MinRefreshInterval:       o.MinRefreshInterval,
		ClusterResourceNamespace: o.ClusterResourceNamespace,
		Resolver: &resolve.Resolver{
			Cached: mgr.GetClient(), Direct: mgr.GetAPIReader(), Metadata: secretMeta, Minter: mgr.GetClient(), Policy: tokens,
			ClusterResourceNamespace:    o.ClusterResourceNamespace,
			Audiences:                   &resolve.ServiceAccountAudiences{Allowed: o.AllowedServiceAccountAudiences, Discover: discoverAudiences, Clock: o.Clock},
			NoServiceAccountCredentials: !o.EnableServiceAccountCredentials,
			Clock:                       o.Clock,
		},
		NoRolloutRestarts: !o.EnableRolloutRestarts,
	}
	if err := index.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(ctx, mgr, tokenrequest.SetupOptions{
		MaxConcurrentReconciles: o.MaxConcurrentReconciles, MaxTokenCallsPerNamespace: o.MaxTokenCallsPerNamespace, SecretMetadata: secretMeta,
		TokenCallsPerNamespacePerSecond: o.TokenCallsPerNamespacePerSecond, TokenCallBurstPerNamespace: o.TokenCallBurstPerNamespace,
	}); err != nil {
		return nil, err
	}
	if err := issuer.SetupWithManager(mgr, issuer.Options{
		Resolver: r.Resolver, Metrics: m, SecretMetadata: secretMeta,
		ClusterResourceNamespace: o.ClusterResourceNamespace, CountRequests: o.CountIssuerRequests,
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// metricsServerOptions are the metrics server's settings, as kubebuilder v4
// scaffolds them: HTTPS behind the token filter, HTTP/1.1 only unless
// EnableHTTP2, and the certificate in MetricsCertPath watched for rotation.
// The watcher, if any, must run with the manager.
func metricsServerOptions(o Options) (metricsserver.Options, *certwatcher.CertWatcher, error) {
	opts := metricsserver.Options{BindAddress: o.MetricsBindAddress, SecureServing: o.MetricsSecure}
	if !o.MetricsSecure {
		if o.MetricsCertPath != "" {
			return opts, nil, fmt.Errorf("--metrics-cert-path needs --metrics-secure")
		}
		return opts, nil, nil
	}
	opts.FilterProvider = metricsAuth
	if !o.EnableHTTP2 {
		opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if o.MetricsCertPath == "" {
		return opts, nil, nil
	}
	// Read now, so that a missing or broken certificate stops the start
	// instead of falling back to a self-signed one.
	w, err := certwatcher.New(filepath.Join(o.MetricsCertPath, o.MetricsCertName), filepath.Join(o.MetricsCertPath, o.MetricsCertKey))
	if err != nil {
		return opts, nil, fmt.Errorf("--metrics-cert-path: %w", err)
	}
	opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.GetCertificate = w.GetCertificate })
	return opts, w, nil
}

func ctrlConfig(o Options) config.Controller {
	c := config.Controller{}
	if o.SkipNameValidation {
		t := true
		c.SkipNameValidation = &t
	}
	return c
}

// rootCAs is the system pool plus the extra CA bundles.
func rootCAs(o Options) (*x509.CertPool, error) {
	if o.RootCAs != nil {
		return o.RootCAs, nil
	}
	if len(o.CABundleFiles) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range o.CABundleFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}
