package install_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartv2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// renderError renders the chart and returns the error Helm reports.
func renderError(t *testing.T, values map[string]any) error {
	t.Helper()
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(ch, values, common.ReleaseOptions{Name: "token-operator", Namespace: "token-operator-system", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return err
	}
	_, err = engine.Engine{Strict: true}.RenderWithContext(t.Context(), ch, vals)
	return err
}

// TestChartPassesZeroValues: a value whose zero means something (0: no
// limit, false: off) reaches the manager as a flag; a value set to null
// leaves the manager's default.
func TestChartPassesZeroValues(t *testing.T) {
	for _, tc := range []struct {
		key  string
		zero any
		want string
	}{
		{"maxTokenCallsPerNamespace", 0, "--max-token-calls-per-namespace=0"},
		{"tokenCallsPerNamespacePerSecond", 0, "--token-calls-per-namespace-per-second=0"},
		{"kubeAPIQPS", 0, "--kube-api-qps=0"},
		{"kubeAPIBurst", 0, "--kube-api-burst=0"},
		{"logLevel", 0, "--zap-log-level=0"},
		{"countIssuerRequests", false, "--count-issuer-requests=false"},
		{"minRefreshInterval", "0s", "--min-refresh-interval=0s"},
		{"minRemainingLifetime", "0", "--min-remaining-lifetime=0"},
		// A YAML file's numbers arrive as floats.
		{"maxTokenCallsPerNamespace", float64(0), "--max-token-calls-per-namespace=0"},
		{"tokenCallsPerNamespacePerSecond", 0.5, "--token-calls-per-namespace-per-second=0.5"},
	} {
		t.Run(tc.key+"="+strings.TrimPrefix(tc.want, "--"), func(t *testing.T) {
			values := map[string]any{tc.key: tc.zero}
			if err := renderSchemaError(t, values); err != nil {
				t.Fatalf("the schema refuses %v: %v", values, err)
			}
			_, c := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", values), "token-operator")
			checkArgsAreFlags(t, "chart Deployment", c.Args)
			containsAll(t, "chart Deployment", c.Args, tc.want)
			flag, _, _ := strings.Cut(tc.want, "=")
			if n := len(slices.DeleteFunc(slices.Clone(c.Args), func(a string) bool { return !strings.HasPrefix(a, flag+"=") })); n != 1 {
				t.Errorf("%s %d times in %q", flag, n, c.Args)
			}
		})
	}
	t.Run("null leaves the manager's default", func(t *testing.T) {
		_, c := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", map[string]any{"maxTokenCallsPerNamespace": nil, "countIssuerRequests": nil}), "token-operator")
		containsNone(t, "chart Deployment", c.Args, "--max-token-calls-per-namespace", "--count-issuer-requests")
	})
	t.Run("maxTokenBytes 0 is refused by the schema", func(t *testing.T) {
		if renderSchemaError(t, map[string]any{"maxTokenBytes": 0}) == nil {
			t.Errorf("the schema accepts maxTokenBytes 0")
		}
	})
}

// renderSchemaError validates values against values.schema.json.
func renderSchemaError(t *testing.T, values map[string]any) error {
	t.Helper()
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(ch, values, common.ReleaseOptions{Name: "token-operator", Namespace: "token-operator-system", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return err
	}
	v, _ := vals.Table("Values")
	return chartutil.ValidateAgainstSchema(ch, v)
}

// TestChartDeploymentValues: strategy, revisionHistoryLimit (0 included),
// probe overrides and commonLabels reach the objects.
func TestChartDeploymentValues(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		r := renderChart(t, "token-operator", "token-operator-system", nil)
		d, c := chartDeployment(t, r, "token-operator")
		if d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 10 || d.Spec.Strategy.Type != "" {
			t.Errorf("revisionHistoryLimit %v, strategy %+v", d.Spec.RevisionHistoryLimit, d.Spec.Strategy)
		}
		checkProbe(t, "liveness", c.LivenessProbe, "/healthz", 15, 20, 1, 3)
		checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", 5, 10, 1, 3)
	})
	t.Run("revisionHistoryLimit 0", func(t *testing.T) {
		d, _ := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", map[string]any{"revisionHistoryLimit": 0}), "token-operator")
		if d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 0 {
			t.Errorf("revisionHistoryLimit %v, want 0", d.Spec.RevisionHistoryLimit)
		}
	})
	t.Run("probes off", func(t *testing.T) {
		_, c := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", map[string]any{
			"livenessProbe": map[string]any{"enabled": false}, "readinessProbe": map[string]any{"enabled": false},
		}), "token-operator")
		if c.LivenessProbe != nil || c.ReadinessProbe != nil {
			t.Errorf("probes with enabled false: %+v, %+v", c.LivenessProbe, c.ReadinessProbe)
		}
	})
	t.Run("all on", func(t *testing.T) {
		r := renderChart(t, "tokens", "platform", allOnValues(t))
		d, c := chartDeployment(t, r, "tokens-token-operator")
		want := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge: ptrTo(intstr.FromInt32(1)), MaxUnavailable: ptrTo(intstr.FromInt32(0)),
		}}
		if !reflect.DeepEqual(d.Spec.Strategy, want) || *d.Spec.RevisionHistoryLimit != 5 {
			t.Errorf("strategy %+v, revisionHistoryLimit %d", d.Spec.Strategy, *d.Spec.RevisionHistoryLimit)
		}
		checkProbe(t, "liveness", c.LivenessProbe, "/healthz", 20, 30, 2, 4)
		checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", 3, 5, 2, 2)
		for _, o := range r.objects {
			if o.GetLabels()["example.com/cost-center"] != "platform" {
				t.Errorf("%s lacks commonLabels: %v", describe(o), o.GetLabels())
			}
		}
		if d.Spec.Template.Labels["example.com/cost-center"] != "platform" {
			t.Errorf("pod labels lack commonLabels: %v", d.Spec.Template.Labels)
		}
		if _, ok := d.Spec.Selector.MatchLabels["example.com/cost-center"]; ok {
			t.Errorf("commonLabels in the Deployment's immutable selector: %v", d.Spec.Selector.MatchLabels)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

func checkProbe(t *testing.T, name string, p *corev1.Probe, path string, delay, period, timeout, failures int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.StrVal != "health" ||
		p.InitialDelaySeconds != delay || p.PeriodSeconds != period || p.TimeoutSeconds != timeout || p.FailureThreshold != failures {
		t.Errorf("%s probe %+v, want %s on health, delay %d, period %d, timeout %d, failures %d", name, p, path, delay, period, timeout, failures)
	}
}

// TestChartDisruptionBudget: maxUnavailable replaces minAvailable, 0
// included; both together are refused.
func TestChartDisruptionBudget(t *testing.T) {
	pdb := func(values map[string]any) *policyv1.PodDisruptionBudget {
		return convert[policyv1.PodDisruptionBudget](t, find(t, renderChart(t, "token-operator", "token-operator-system", map[string]any{"podDisruptionBudget": values}).objects, "PodDisruptionBudget", "token-operator"))
	}
	for _, tc := range []struct {
		name     string
		values   map[string]any
		min, max *intstr.IntOrString
	}{
		{"minAvailable 0", map[string]any{"minAvailable": 0}, ptrTo(intstr.FromInt32(0)), nil},
		{"maxUnavailable 0", map[string]any{"minAvailable": nil, "maxUnavailable": 0}, nil, ptrTo(intstr.FromInt32(0))},
		{"maxUnavailable percentage", map[string]any{"minAvailable": nil, "maxUnavailable": "50%"}, nil, ptrTo(intstr.FromString("50%"))},
		{"neither", map[string]any{"minAvailable": nil}, ptrTo(intstr.FromInt32(1)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := renderSchemaError(t, map[string]any{"podDisruptionBudget": tc.values}); err != nil {
				t.Fatalf("schema: %v", err)
			}
			p := pdb(tc.values)
			if !reflect.DeepEqual(p.Spec.MinAvailable, tc.min) || !reflect.DeepEqual(p.Spec.MaxUnavailable, tc.max) {
				t.Errorf("minAvailable %v, maxUnavailable %v; want %v, %v", p.Spec.MinAvailable, p.Spec.MaxUnavailable, tc.min, tc.max)
			}
		})
	}
	t.Run("both", func(t *testing.T) {
		err := renderError(t, map[string]any{"podDisruptionBudget": map[string]any{"maxUnavailable": 1}})
		if err == nil || !strings.Contains(err.Error(), "not both") {
			t.Errorf("minAvailable (default 1) with maxUnavailable: %v", err)
		}
	})
}

// TestChartServiceAccountValues: labels, and with automount off a pod that
// still has its API credentials, from a projected volume like the
// kubelet's.
func TestChartServiceAccountValues(t *testing.T) {
	r := renderChart(t, "tokens", "platform", allOnValues(t))
	sa := convert[corev1.ServiceAccount](t, find(t, r.objects, "ServiceAccount", "token-operator-sa"))
	if sa.Labels["example.com/purpose"] != "token-operator" || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("service account labels %v, automount %v", sa.Labels, sa.AutomountServiceAccountToken)
	}
	d, c := chartDeployment(t, r, "tokens-token-operator")
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod automountServiceAccountToken %v, want false", pod.AutomountServiceAccountToken)
	}
	checkProjectedToken(t, pod, c)

	r = renderChart(t, "token-operator", "token-operator-system", nil)
	sa = convert[corev1.ServiceAccount](t, find(t, r.objects, "ServiceAccount", "token-operator"))
	d, c = chartDeployment(t, r, "token-operator")
	if sa.AutomountServiceAccountToken == nil || !*sa.AutomountServiceAccountToken || d.Spec.Template.Spec.AutomountServiceAccountToken != nil || len(c.VolumeMounts) != 0 {
		t.Errorf("by default: service account automount %v, pod automount %v, mounts %+v", sa.AutomountServiceAccountToken, d.Spec.Template.Spec.AutomountServiceAccountToken, c.VolumeMounts)
	}
}

func checkProjectedToken(t *testing.T, pod corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "kube-api-access" })
	if i < 0 || pod.Volumes[i].Projected == nil {
		t.Fatalf("no projected kube-api-access volume: %+v", pod.Volumes)
	}
	var token, ca, ns bool
	for _, s := range pod.Volumes[i].Projected.Sources {
		token = token || (s.ServiceAccountToken != nil && s.ServiceAccountToken.Path == "token" && s.ServiceAccountToken.Audience == "")
		ca = ca || (s.ConfigMap != nil && s.ConfigMap.Name == "kube-root-ca.crt")
		ns = ns || (s.DownwardAPI != nil && len(s.DownwardAPI.Items) == 1 && s.DownwardAPI.Items[0].FieldRef.FieldPath == "metadata.namespace")
	}
	if !token || !ca || !ns {
		t.Errorf("projected volume: token %v, CA %v, namespace %v", token, ca, ns)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "kube-api-access" && m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" && m.ReadOnly
	}) {
		t.Errorf("kube-api-access not mounted where client-go looks: %+v", c.VolumeMounts)
	}
}

// TestChartLeasePerRelease: two releases in one namespace elect their
// leaders on different Leases; leaseName overrides.
func TestChartLeasePerRelease(t *testing.T) {
	lease := func(release string, values map[string]any) string {
		_, c := chartDeployment(t, renderChart(t, release, "token-operator-system", values), release)
		checkArgsAreFlags(t, "chart Deployment", c.Args)
		var ids []string
		for _, a := range c.Args {
			if id, ok := strings.CutPrefix(a, "--leader-election-id="); ok {
				ids = append(ids, id)
			}
		}
		if len(ids) != 1 {
			t.Fatalf("--leader-election-id %d times in %q", len(ids), c.Args)
		}
		return ids[0]
	}
	a := lease("token-operator", nil)
	b := lease("token-operator-shard-b", map[string]any{"watchLabelSelector": "tokens.token-operator.io/shard=b"})
	if a == b || a != "token-operator-leader-election" || b != "token-operator-shard-b-leader-election" {
		t.Errorf("Leases %q and %q: want one per release", a, b)
	}
	if got := lease("token-operator", map[string]any{"leaderElection": map[string]any{"leaseName": "token-operator.tokens.token-operator.io"}}); got != "token-operator.tokens.token-operator.io" {
		t.Errorf("leaseName: %q", got)
	}
	_, c := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", map[string]any{"leaderElection": map[string]any{"enabled": false}}), "token-operator")
	containsNone(t, "chart Deployment", c.Args, "--leader-election-id", "--leader-elect")
}

// TestChartRBACCreate: rbac.create=false renders no RBAC object at all.
func TestChartRBACCreate(t *testing.T) {
	values := allOnValues(t)
	values["rbac"] = map[string]any{"create": false}
	r := renderChart(t, "tokens", "platform", values)
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		if got := ofKind(r.objects, kind); len(got) != 0 {
			t.Errorf("rbac.create=false renders %s", describe(got[0]))
		}
	}
	chartDeployment(t, r, "tokens-token-operator")
	find(t, r.objects, "ServiceAccount", "token-operator-sa")
}

// TestChartKubeVersion: Chart.yaml's kubeVersion is the range the README
// states, so that Helm refuses older clusters.
func TestChartKubeVersion(t *testing.T) {
	var meta struct {
		KubeVersion string `json:"kubeVersion"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "charts", "token-operator", "Chart.yaml")), &meta); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Requires Kubernetes (1\.\d+) or later`).FindStringSubmatch(readFile(t, "README.md"))
	if m == nil {
		t.Fatal("README.md does not state the oldest Kubernetes")
	}
	if want := ">=" + m[1] + ".0-0"; meta.KubeVersion != want {
		t.Errorf("Chart.yaml kubeVersion %q, want %q (README: %s)", meta.KubeVersion, want, m[0])
	}
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	old, err := common.ParseKubeVersion("v1.28.15")
	if err != nil {
		t.Fatal(err)
	}
	if chartv2util.IsCompatibleRange(ch.Metadata.KubeVersion, old.String()) {
		t.Errorf("kubeVersion %q accepts %s", ch.Metadata.KubeVersion, old)
	}
	if oldest := "v" + m[1] + ".0"; !chartv2util.IsCompatibleRange(ch.Metadata.KubeVersion, oldest) {
		t.Errorf("kubeVersion %q refuses %s", ch.Metadata.KubeVersion, oldest)
	}
}

// TestChartWithScopedValues renders the chart for two watched namespaces
// and has the API server accept it (server-side dry run).
func TestChartWithScopedValues(t *testing.T) {
	const ns = "token-operator-scoped"
	ensureNamespace(t, ns, restricted)
	for _, watched := range []string{"a", "b"} {
		ensureNamespace(t, watched, nil)
	}
	r := renderChart(t, "token-operator", ns, map[string]any{"watchNamespaces": []any{"a", "b"}})
	applyDryRun(t, "chart with watchNamespaces", r.objects, ns)
	_, c := chartDeployment(t, r, "token-operator")
	checkArgsAreFlags(t, "chart Deployment", c.Args)
	containsAll(t, "chart Deployment", c.Args, "--namespace=a", "--namespace=b")
	if !strings.Contains(r.notes, "a, b") {
		t.Errorf("NOTES.txt does not name the watched namespaces:\n%s", r.notes)
	}
}

// TestChartWithoutRBACApplies: with rbac.create=false and an existing
// service account the rest of the chart still applies.
func TestChartWithoutRBACApplies(t *testing.T) {
	const ns = "token-operator-norbac"
	ensureNamespace(t, ns, restricted)
	r := renderChart(t, "token-operator", ns, map[string]any{
		"rbac":           map[string]any{"create": false},
		"serviceAccount": map[string]any{"create": false, "name": "token-operator-managed-elsewhere"},
		"crds":           map[string]any{"enabled": false},
	})
	applyDryRun(t, "chart without RBAC", r.objects, ns)
	for _, o := range r.objects {
		if strings.HasPrefix(o.GetAPIVersion(), "rbac.authorization.k8s.io/") || o.GetKind() == "ServiceAccount" || o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("rendered %s", describe(o))
		}
	}
}

// TestChartLocalImage: the README's local-cluster install (a loaded
// token-operator:dev, pull policy Never) renders that image and policy.
func TestChartLocalImage(t *testing.T) {
	values := map[string]any{"image": map[string]any{"tag": "dev", "pullPolicy": "Never"}}
	if err := renderSchemaError(t, values); err != nil {
		t.Fatal(err)
	}
	_, c := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", values), "token-operator")
	if c.Image != "token-operator:dev" || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %q, pull policy %q; want token-operator:dev, Never", c.Image, c.ImagePullPolicy)
	}
	if !strings.Contains(readFile(t, "charts", "token-operator", "README.md"), "--set image.tag=dev --set image.pullPolicy=Never") {
		t.Errorf("the chart README's local-cluster install does not use image.tag=dev and pullPolicy Never")
	}
}
