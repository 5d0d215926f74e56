// Command manager runs the token-operator controller manager.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/version"
)

// stringList is a repeatable flag that also accepts comma-separated values.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s = append(*s, part)
		}
	}
	return nil
}

func main() {
	o := operator.Defaults()
	var namespaces, caBundles, issuerHosts, saAudiences stringList
	var kubeAPIQPS float64
	var showVersion bool
	flag.BoolVar(&showVersion, "version", false, "Print the version, commit and build date, then exit.")
	flag.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address the Prometheus metrics endpoint binds to; \"0\" turns it off.")
	flag.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "Serve metrics over HTTPS with Kubernetes authentication and authorization; false serves plain HTTP.")
	flag.StringVar(&o.MetricsCertPath, "metrics-cert-path", "", "Directory holding the metrics server's certificate and key, reloaded when they change, for example a mounted cert-manager Secret (default: a self-signed certificate).")
	flag.StringVar(&o.MetricsCertName, "metrics-cert-name", o.MetricsCertName, "File name of the metrics server's certificate in --metrics-cert-path.")
	flag.StringVar(&o.MetricsCertKey, "metrics-cert-key", o.MetricsCertKey, "File name of the metrics server's private key in --metrics-cert-path.")
	flag.BoolVar(&o.EnableHTTP2, "enable-http2", false, "Let the metrics server negotiate HTTP/2; off against the HTTP/2 Rapid Reset and Stream Cancellation attacks (CVE-2023-44487, CVE-2023-39325).")
	flag.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address the /healthz and /readyz probes bind to.")
	flag.StringVar(&o.PprofBindAddress, "pprof-bind-address", "", "Address net/http/pprof binds to for profiling, for example 127.0.0.1:8082 (default: off).")
	flag.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", "", "Namespace holding the credentials of ClusterTokenIssuers (default: the namespace the manager runs in: $POD_NAMESPACE, the service account's namespace, or the kubeconfig context's).")
	flag.BoolVar(&o.CountIssuerRequests, "count-issuer-requests", true, "Write how many TokenRequests name each issuer into its status; turn off on all shards but one, since a shard sees only its own TokenRequests.")
	flag.BoolVar(&o.LeaderElection, "leader-elect", false, "Elect a leader on a Lease so that only one replica reconciles.")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the pod's namespace).")
	flag.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the leader election Lease (default: one per --watch-label-selector).")
	flag.StringVar(&o.WatchLabelSelector, "watch-label-selector", "", "Handle only the TokenRequests this label selector matches, to shard the operator: for example tokens.token-operator.io/shard=b for a shard and !tokens.token-operator.io/shard for the main instance (default: all).")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", float64(o.KubeAPIQPS), "Requests per second to the API server (client-side limit; API Priority and Fairness still applies).")
	flag.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of requests to the API server above --kube-api-qps.")
	flag.Var(&namespaces, "namespace", "Watch only this namespace; repeat or comma-separate for several (default: all namespaces).")
	flag.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "TokenRequests reconciled in parallel.")
	flag.IntVar(&o.MaxTokenCallsPerNamespace, "max-token-calls-per-namespace", o.MaxTokenCallsPerNamespace, "Token calls one namespace may have under way; its other TokenRequests wait, so a slow token service cannot hold every worker (0: no limit).")
	flag.Float64Var(&o.TokenCallsPerNamespacePerSecond, "token-calls-per-namespace-per-second", o.TokenCallsPerNamespacePerSecond, "Token calls one namespace may make per second on average (a shared-cache hit is none); its other TokenRequests requeue for their turn, so many TokenRequests cannot storm a client they share (0: no limit).")
	flag.IntVar(&o.TokenCallBurstPerNamespace, "token-call-burst-per-namespace", o.TokenCallBurstPerNamespace, "Token calls one namespace may make at once above --token-calls-per-namespace-per-second.")
	flag.BoolVar(&o.AllowHTTPLoopback, "insecure-allow-http-loopback", false, "Allow plain-http token services on localhost, 127.0.0.1 and [::1] (development only: a namespace could aim credentials at the operator pod's own loopback services).")
	flag.Var(&issuerHosts, "allowed-issuer-hosts", "Token hosts the operator may send any credential to (host, host:port or *.example.com); repeatable or comma-separated. Per-Secret consent can narrow this, never widen it (default: no operator-wide limit).")
	flag.Var(&saAudiences, "allowed-service-account-audiences", "Audiences the operator may mint service account tokens for (an audience, or a prefix ending in *); repeatable or comma-separated. The API server's own audiences are refused whatever this says (default: no operator-wide limit).")
	flag.Int64Var(&o.MaxTokenBytes, "max-token-bytes", o.MaxTokenBytes, "Largest access token (with its token_type) the operator stores, in bytes; a larger one is refused with TokenTooLarge and written nowhere. Entra access tokens are 1.5-4 KiB (up to about 12 KiB with many groups or roles), Google's and AWS session tokens 1-2 KiB.")
	flag.DurationVar(&o.TokenRequestTimeout, "token-request-timeout", o.TokenRequestTimeout, "Timeout of one call to a token service.")
	flag.DurationVar(&o.MinRemainingLifetime, "min-remaining-lifetime", o.MinRemainingLifetime, "Validity a token keeps at least when refreshed, so kubelet can propagate the Secret to pods.")
	flag.DurationVar(&o.MinRefreshInterval, "min-refresh-interval", o.MinRefreshInterval, "Shortest time from a token's issue to its refresh (at most half the token's lifetime), whatever hints or renewal settings say: a safety net against refresh storms.")
	flag.BoolVar(&o.EnableServiceAccountCredentials, "enable-service-account-credentials", o.EnableServiceAccountCredentials, "Let TokenRequests and issuers use a ServiceAccount credential, for which the operator creates service account tokens (RBAC: serviceaccounts/token create); false refuses them with ServiceAccountCredentialsDisabled.")
	flag.BoolVar(&o.EnableRolloutRestarts, "enable-rollout-restarts", o.EnableRolloutRestarts, "Let TokenRequests name rollout restart targets, which the operator patches (RBAC: apps deployments, statefulsets, daemonsets patch); false refuses them with RolloutRestartsDisabled.")
	flag.Var(&caBundles, "ca-bundle", "PEM file of extra CA certificates trusted for token endpoints (servers with a private CA); repeatable.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if showVersion {
		fmt.Println(version.Get())
		return
	}
	metrics.RegisterBuildInfo(ctrlmetrics.Registry, version.Get())
	o.Namespaces, o.CABundleFiles, o.AllowedIssuerHosts = namespaces, caBundles, issuerHosts
	o.AllowedServiceAccountAudiences = saAudiences
	o.KubeAPIQPS = float32(kubeAPIQPS)
	if o.ClusterResourceNamespace == "" {
		o.ClusterResourceNamespace = runningNamespace()
	}

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if _, set := os.LookupEnv("GOGC"); !set {
		// Idle between refresh waves: collecting at half the heap's growth
		// costs little CPU and keeps the footprint smaller.
		debug.SetGCPercent(50)
	}
	// A Go memory limit just under the container's makes the collector
	// work harder before the kernel would kill the pod; GOMEMLIMIT or
	// AUTOMEMLIMIT=off in the environment take precedence.
	if limit, err := memlimit.Set(memlimit.WithRatio(0.9)); err != nil {
		log.Info("no Go memory limit from the container's", "reason", err.Error())
	} else if limit > 0 && limit < math.MaxInt64 {
		log.Info("Go memory limit", "bytes", limit)
	}
	ctx := ctrl.SetupSignalHandler()
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "no Kubernetes configuration:", err)
		os.Exit(1)
	}
	mgr, err := operator.NewManager(ctx, cfg, o)
	if err != nil {
		log.Error(err, "setting up the manager")
		os.Exit(1)
	}
	log.Info("starting", "namespaces", o.Namespaces, "leaderElection", o.LeaderElection, "clusterResourceNamespace", o.ClusterResourceNamespace)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// runningNamespace is the namespace the manager runs in: the pod's, or the
// kubeconfig context's when it runs outside the cluster.
func runningNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f := flag.Lookup("kubeconfig"); f != nil && f.Value.String() != "" {
		rules.ExplicitPath = f.Value.String()
	}
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}
