package install_test

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// helmConfig is Helm's action configuration for namespace, talking to the
// test API server through a kubeconfig, with releases in Secrets.
func helmConfig(t *testing.T, namespace string) *action.Configuration {
	t.Helper()
	kubeconfig, err := testEnv.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.DiscardHandler) // errors come back from the actions
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	// A kube-apiserver built from source without version stamps reports
	// v0.0.0-master: give Helm the version its binaries are named after,
	// for the chart's kubeVersion check.
	dc, err := flags.ToDiscoveryClient()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dc.ServerVersion(); err != nil || !strings.HasPrefix(v.GitVersion, "v0.0.0") {
		return cfg
	}
	m := regexp.MustCompile(`k8s[-/](1\.\d+\.\d+)`).FindStringSubmatch(os.Getenv("KUBEBUILDER_ASSETS"))
	if m == nil {
		t.Fatalf("no Kubernetes version in KUBEBUILDER_ASSETS=%s", os.Getenv("KUBEBUILDER_ASSETS"))
	}
	kv, err := common.ParseKubeVersion("v" + m[1])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Capabilities = common.DefaultCapabilities.Copy()
	cfg.Capabilities.KubeVersion = *kv
	return cfg
}

var chartCRDs = []string{"tokenrequests", "tokenissuers", "clustertokenissuers"}

// crd is an empty CustomResourceDefinition object named plural.tokens.token-operator.io.
func crd(plural string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	u.SetName(plural + ".tokens.token-operator.io")
	return u
}

// TestChartInstallsAndAdoptsCRDs installs the chart for real with the
// Helm 4 library: over CRDs that exist without Helm's ownership (as the
// API server's CRDs here were applied from config/crd/bases) the install
// is refused until the labels and annotations of the adoption commands in
// docs/install.md are set; then it installs, upgrades with a zero value, a
// second release (a shard, crds.enabled=false) installs beside it on its
// own Lease, and uninstalling leaves the CRDs.
func TestChartInstallsAndAdoptsCRDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns, release = "token-operator-helm", "token-operator"
	ensureNamespace(t, ns, restricted)
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := helmConfig(t, ns)
	install := func(name string, values map[string]any) error {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.WaitStrategy, in.Timeout = name, ns, kube.HookOnlyStrategy, time.Minute
		_, err := in.RunWithContext(ctx, ch, values)
		return err
	}

	for _, plural := range chartCRDs {
		c := crd(plural)
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			t.Fatalf("the test API server lacks the CRD: %v", err)
		}
		if _, owned := c.GetAnnotations()["meta.helm.sh/release-name"]; owned {
			t.Fatalf("CRD %s already belongs to a release: %v", c.GetName(), c.GetAnnotations())
		}
	}
	err = install(release, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot be imported into the current release") {
		t.Fatalf("installing over unowned CRDs: %v, want Helm's ownership refusal", err)
	}

	// kubectl label crd ... app.kubernetes.io/managed-by=Helm; kubectl annotate crd ... meta.helm.sh/release-name=... meta.helm.sh/release-namespace=...
	for _, plural := range chartCRDs {
		patch := `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"Helm"},"annotations":{"meta.helm.sh/release-name":"` + release + `","meta.helm.sh/release-namespace":"` + ns + `"}}}`
		if err := k8s.Patch(ctx, crd(plural), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
	}
	if err := install(release, nil); err != nil {
		t.Fatalf("installing after the adoption commands: %v", err)
	}
	for _, plural := range chartCRDs {
		c := crd(plural)
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			t.Fatal(err)
		}
		if c.GetAnnotations()["helm.sh/resource-policy"] != "keep" || c.GetLabels()["app.kubernetes.io/instance"] != release {
			t.Errorf("CRD %s after the install: labels %v, annotations %v", c.GetName(), c.GetLabels(), c.GetAnnotations())
		}
	}

	up := action.NewUpgrade(cfg)
	up.Namespace, up.WaitStrategy, up.Timeout, up.ResetThenReuseValues = ns, kube.HookOnlyStrategy, time.Minute, true
	if _, err := up.RunWithContext(ctx, release, ch, map[string]any{"maxTokenCallsPerNamespace": 0}); err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	args := func(name string) []string {
		var d appsv1.Deployment
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Args
	}
	containsAll(t, "upgraded Deployment", args(release), "--max-token-calls-per-namespace=0", "--leader-election-id=token-operator-leader-election")

	const shard = "token-operator-shard-b"
	if err := install(shard, map[string]any{
		"crds": map[string]any{"enabled": false}, "watchLabelSelector": "tokens.token-operator.io/shard=b", "countIssuerRequests": false,
	}); err != nil {
		t.Fatalf("installing a second release in the namespace: %v", err)
	}
	containsAll(t, "shard Deployment", args(shard), "--leader-election-id=token-operator-shard-b-leader-election", "--count-issuer-requests=false")

	for _, name := range []string{shard, release} {
		un := action.NewUninstall(cfg)
		un.WaitStrategy, un.Timeout = kube.HookOnlyStrategy, time.Minute
		if _, err := un.Run(name); err != nil {
			t.Fatalf("uninstalling %s: %v", name, err)
		}
	}
	var d appsv1.Deployment
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: release}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment after uninstall: %v", err)
	}
	for _, plural := range chartCRDs {
		c := crd(plural)
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil || c.GetDeletionTimestamp() != nil {
			t.Errorf("CRD %s after uninstall (crds.keep): %v, deleting %v", c.GetName(), err, c.GetDeletionTimestamp())
		}
	}
}
