package install_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func chartDir() string { return repoPath("charts", "token-operator") }

// rendered is a chart rendered like `helm install`: its objects and its
// NOTES.txt.
type rendered struct {
	objects []*unstructured.Unstructured
	notes   string
}

// renderChart renders the chart with the Go SDK, as `helm template` does,
// with strict templates (a missing value is an error) and the chart's
// values.schema.json, if any.
func renderChart(t *testing.T, release, namespace string, values map[string]any) rendered {
	t.Helper()
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	vals, err := chartutil.ToRenderValues(ch, values, common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	out, err := engine.Engine{Strict: true}.RenderWithContext(t.Context(), ch, vals)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	var r rendered
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text := out[name]
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			r.notes = text
			continue
		case strings.HasPrefix(filepath.Base(name), "_"):
			continue
		}
		objs, err := decodeObjects([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, text)
		}
		r.objects = append(r.objects, objs...)
	}
	// The CRDs come from templates only (crds.enabled): a crds/ folder too
	// would make Helm create them before the release and then refuse to
	// adopt them.
	if crds := ch.CRDObjects(); len(crds) != 0 {
		t.Fatalf("the chart has a crds/ folder (%s): the CRDs are templates only", crds[0].Filename)
	}
	return r
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := common.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

func allOnValues(t *testing.T) map[string]any {
	return readValues(t, filepath.Join(chartDir(), "ci", "all-on-values.yaml"))
}

// TestChartLints runs the checks of `helm lint --strict` on the default
// values and on every option turned on.
func TestChartLints(t *testing.T) {
	for name, values := range map[string]map[string]any{"default values": nil, "all options on": allOnValues(t)} {
		t.Run(name, func(t *testing.T) {
			linter := lint.RunAll(chartDir(), values, "token-operator-system")
			for _, m := range linter.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// TestChartCRDsAreTheGeneratedOnes: charts/token-operator/files/crds/,
// which templates/crds.yaml renders, holds byte-for-byte the CRDs
// controller-gen writes to config/crd/bases (make manifests copies them).
func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	generated, err := filepath.Glob(repoPath("config", "crd", "bases", "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no generated CRDs in config/crd/bases: %v", err)
	}
	inChart, err := filepath.Glob(filepath.Join(chartDir(), "files", "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	base := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	const fix = "run make manifests (it copies config/crd/bases/*.yaml to charts/token-operator/files/crds/)"
	if !slices.Equal(base(generated), base(inChart)) {
		t.Fatalf("chart CRDs %v differ from config/crd/bases %v: %s", base(inChart), base(generated), fix)
	}
	for _, g := range generated {
		want, _ := os.ReadFile(g)
		got, _ := os.ReadFile(filepath.Join(chartDir(), "files", "crds", filepath.Base(g)))
		if !bytes.Equal(want, got) {
			t.Errorf("charts/token-operator/files/crds/%s differs from config/crd/bases: %s", filepath.Base(g), fix)
		}
	}
}

func chartDeployment(t *testing.T, r rendered, name string) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := convert[appsv1.Deployment](t, find(t, r.objects, "Deployment", name))
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

// checkRestricted asserts the restricted Pod Security Standard settings and
// a read-only root file system. (applyDryRun also has the API server's
// PodSecurity admission check the Deployment: its namespace warns on
// restricted violations and warnings fail the test.)
func checkRestricted(t *testing.T, source string, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", source)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", source)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: container %s has no securityContext", source, c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s: allowPrivilegeEscalation is not false", source, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: container %s: readOnlyRootFilesystem is not true", source, c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: container %s: capabilities are not drop [ALL] with none added: %+v", source, c.Name, sc.Capabilities)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: container %s is privileged", source, c.Name)
		}
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: the pod uses host namespaces", source)
	}
}

func checkManagerRules(t *testing.T, source string, role *rbacv1.ClusterRole) {
	t.Helper()
	if want := generatedManagerRules(t); !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("%s: the manager ClusterRole's rules differ from config/rbac/role.yaml (run make manifests and copy the rules into charts/token-operator/templates/clusterrole.yaml)\n got: %+v\nwant: %+v", source, role.Rules, want)
	}
}

func TestChartWithDefaultValues(t *testing.T) {
	const ns = "token-operator-system"
	r := renderChart(t, "token-operator", ns, nil)
	ensureNamespace(t, ns, restricted)
	applyDryRun(t, "chart with default values", r.objects, ns)

	checkManagerRules(t, "chart", convert[rbacv1.ClusterRole](t, find(t, r.objects, "ClusterRole", "token-operator-manager")))
	binding := convert[rbacv1.ClusterRoleBinding](t, find(t, r.objects, "ClusterRoleBinding", "token-operator-manager"))
	wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: "token-operator", Namespace: ns}
	if binding.RoleRef.Name != "token-operator-manager" || !reflect.DeepEqual(binding.Subjects, []rbacv1.Subject{wantSubject}) {
		t.Errorf("manager ClusterRoleBinding: %+v", binding)
	}
	find(t, r.objects, "ServiceAccount", "token-operator")
	find(t, r.objects, "Role", "token-operator-leader-election")
	find(t, r.objects, "RoleBinding", "token-operator-leader-election")
	find(t, r.objects, "ClusterRole", "token-operator-metrics-auth")
	find(t, r.objects, "ClusterRoleBinding", "token-operator-metrics-auth")
	find(t, r.objects, "ClusterRole", "token-operator-metrics-reader")
	if sm := ofKind(r.objects, "ServiceMonitor"); len(sm) != 0 {
		t.Errorf("a ServiceMonitor by default")
	}
	svc := convert[corev1.Service](t, find(t, r.objects, "Service", "token-operator-metrics"))
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Name != "https" || p[0].Port != 8443 || p[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics Service ports: %+v", p)
	}

	d, c := chartDeployment(t, r, "token-operator")
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas: %d, want 2", *d.Spec.Replicas)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("metrics Service selector %v does not match the pod labels %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if c.Image != "token-operator:0.1.0" {
		t.Errorf("image %q, want the chart's appVersion as tag", c.Image)
	}
	checkRestricted(t, "chart Deployment", d.Spec.Template.Spec)
	checkArgsAreFlags(t, "chart Deployment", c.Args)
	containsAll(t, "chart Deployment", c.Args,
		"--leader-elect", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8443", "--metrics-secure",
		"--zap-log-level=info", "--max-concurrent-reconciles=16", "--max-token-calls-per-namespace=2", "--token-request-timeout=30s", "--min-remaining-lifetime=2m", "--min-refresh-interval=30s",
		"--token-calls-per-namespace-per-second=20", "--token-call-burst-per-namespace=100",
		"--kube-api-qps=500", "--kube-api-burst=1000")
	containsNone(t, "chart Deployment", c.Args, "--namespace", "--ca-bundle", "--allowed-issuer-hosts", "--insecure-allow-http-loopback", "--watch-label-selector")
	containsNone(t, "chart Deployment", c.Args, "--allowed-service-account-audiences")
	if len(d.Spec.Template.Spec.Volumes) != 0 {
		t.Errorf("volumes without extraCABundle: %+v", d.Spec.Template.Spec.Volumes)
	}
	checkDefaultExtras(t, r, d, c)
	for _, want := range []string{"rollout status deployment/token-operator", "tokens.token-operator.io/allowed-issuers", "token-operator-metrics-reader"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt does not mention %q:\n%s", want, r.notes)
		}
	}
}

func TestChartWithEveryOptionOn(t *testing.T) {
	const ns = "platform"
	r := renderChart(t, "tokens", ns, allOnValues(t))
	ensureNamespace(t, ns, restricted)
	applyDryRun(t, "chart with every option on", r.objects, ns)

	const full = "tokens-token-operator"
	cluster, roles := managerRoles(t, r.objects, full+"-manager", full+"-manager", full+"-manager", "token-operator-sa", ns)
	checkScoped(t, "chart", cluster, roles, []string{"team-a", "team-b"}, ns+"/"+full+"-manager-cluster-credentials") // watchNamespaces set
	sa := find(t, r.objects, "ServiceAccount", "token-operator-sa")
	if sa.GetAnnotations()["example.com/purpose"] != "token-operator" {
		t.Errorf("service account annotations: %v", sa.GetAnnotations())
	}
	for _, b := range []string{full + "-manager", full + "-metrics-auth"} {
		crb := convert[rbacv1.ClusterRoleBinding](t, find(t, r.objects, "ClusterRoleBinding", b))
		if len(crb.Subjects) != 1 || crb.Subjects[0].Name != "token-operator-sa" || crb.Subjects[0].Namespace != ns {
			t.Errorf("%s binds %+v", b, crb.Subjects)
		}
	}
	find(t, r.objects, "RoleBinding", full+"-leader-election")
	find(t, r.objects, "ClusterRole", full+"-tokenrequest-editor")
	find(t, r.objects, "ClusterRole", full+"-tokenrequest-viewer")

	d, c := chartDeployment(t, r, full)
	pod := d.Spec.Template.Spec
	checkRestricted(t, "chart Deployment", pod)
	// TestChartServiceAccountValues checks the projected token of
	// automountServiceAccountToken: false.
	pod.Volumes = slices.DeleteFunc(slices.Clone(pod.Volumes), func(v corev1.Volume) bool { return v.Name == "kube-api-access" })
	mounts := slices.DeleteFunc(slices.Clone(c.VolumeMounts), func(m corev1.VolumeMount) bool { return m.Name == "kube-api-access" })
	checkArgsAreFlags(t, "chart Deployment", c.Args)
	containsAll(t, "chart Deployment", c.Args,
		"--leader-elect", "--metrics-bind-address=:9443", "--metrics-secure", "--namespace=team-a", "--namespace=team-b",
		"--zap-log-level=debug", "--max-concurrent-reconciles=16", "--max-token-calls-per-namespace=3", "--token-request-timeout=45s", "--min-remaining-lifetime=5m",
		"--allowed-issuer-hosts=login.microsoftonline.com,*.okta.com", "--min-refresh-interval=45s",
		"--watch-label-selector=tokens.token-operator.io/shard=b", "--kube-api-qps=80", "--kube-api-burst=160",
		"--ca-bundle=/etc/token-operator/ca/ca-bundle.pem", "--zap-stacktrace-level=panic")
	containsAll(t, "chart Deployment", c.Args, "--allowed-service-account-audiences=api://AzureADTokenExchange,https://iam.googleapis.com/projects/123/*")
	if *d.Spec.Replicas != 3 || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("replicas %d, image %q, pull policy %q", *d.Spec.Replicas, c.Image, c.ImagePullPolicy)
	}
	if pod.ServiceAccountName != "token-operator-sa" || pod.PriorityClassName != "system-cluster-critical" ||
		len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "registry-cred" ||
		pod.NodeSelector["kubernetes.io/os"] != "linux" || len(pod.Tolerations) != 1 ||
		pod.Affinity == nil || pod.Affinity.NodeAffinity == nil || pod.Affinity.PodAntiAffinity != nil {
		t.Errorf("pod spec does not carry the values: %+v", pod)
	}
	if d.Spec.Template.Annotations["example.com/owner"] != "platform" || d.Spec.Template.Labels["team"] != "platform" {
		t.Errorf("pod annotations %v, labels %v", d.Spec.Template.Annotations, d.Spec.Template.Labels)
	}
	if c.Resources.Limits.Cpu().String() != "1" || c.Resources.Requests.Memory().String() != "128Mi" {
		t.Errorf("resources: %+v", c.Resources)
	}
	checkAllOnExtras(t, r, d, c)
	if len(pod.Volumes) == 0 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != "corporate-ca" ||
		!reflect.DeepEqual(pod.Volumes[0].ConfigMap.Items, []corev1.KeyToPath{{Key: "bundle.pem", Path: "ca-bundle.pem"}}) {
		t.Errorf("CA bundle volume: %+v", pod.Volumes)
	}
	if len(mounts) == 0 || mounts[0].MountPath != "/etc/token-operator/ca" || !mounts[0].ReadOnly {
		t.Errorf("CA bundle mount: %+v", mounts)
	}
	if len(c.Ports) == 0 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9443 {
		t.Errorf("container ports: %+v", c.Ports)
	}

	svc := convert[corev1.Service](t, find(t, r.objects, "Service", full+"-metrics"))
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Name != "https" || p[0].Port != 9443 {
		t.Errorf("metrics Service ports: %+v", p)
	}
	sm := find(t, r.objects, "ServiceMonitor", full)
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels: %v", sm.GetLabels())
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints: %v", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	if ep["port"] != "https" || ep["scheme"] != "https" || ep["interval"] != "15s" {
		t.Errorf("ServiceMonitor endpoint: %v", ep)
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %v does not select the metrics Service (labels %v)", sel, svc.Labels)
		}
	}
	if !strings.Contains(r.notes, "team-a, team-b") {
		t.Errorf("NOTES.txt does not name the watched namespaces:\n%s", r.notes)
	}
}

// TestChartWithOptionsOff turns off what can be turned off: no leader
// election, plain-HTTP metrics, then no metrics at all, and an existing
// service account.
func TestChartWithOptionsOff(t *testing.T) {
	const ns = "token-operator-min"
	ensureNamespace(t, ns, restricted)

	t.Run("plain HTTP metrics, no leader election, existing service account", func(t *testing.T) {
		r := renderChart(t, "token-operator", ns, map[string]any{
			"replicaCount":            1,
			"leaderElection":          map[string]any{"enabled": false},
			"metrics":                 map[string]any{"secure": false, "port": 8080},
			"serviceAccount":          map[string]any{"create": false, "name": "existing-sa"},
			"aggregateToDefaultRoles": false,
		})
		applyDryRun(t, "chart with options off", r.objects, ns)
		for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
			if got := ofKind(r.objects, kind); len(got) != 0 {
				t.Errorf("unexpected %s: %v", kind, describe(got[0]))
			}
		}
		if got := ofKind(r.objects, "ClusterRole"); len(got) != 1 || got[0].GetName() != "token-operator-manager" {
			t.Errorf("want only the manager ClusterRole, got %d", len(got))
		}
		d, c := chartDeployment(t, r, "token-operator")
		if d.Spec.Template.Spec.ServiceAccountName != "existing-sa" {
			t.Errorf("service account %q", d.Spec.Template.Spec.ServiceAccountName)
		}
		checkArgsAreFlags(t, "chart Deployment", c.Args)
		containsAll(t, "chart Deployment", c.Args, "--metrics-bind-address=:8080", "--metrics-secure=false")
		containsNone(t, "chart Deployment", c.Args, "--leader-elect")
		svc := convert[corev1.Service](t, find(t, r.objects, "Service", "token-operator-metrics"))
		if p := svc.Spec.Ports; len(p) != 1 || p[0].Name != "http" || p[0].Port != 8080 {
			t.Errorf("metrics Service ports: %+v", p)
		}
	})

	t.Run("no metrics", func(t *testing.T) {
		r := renderChart(t, "token-operator", ns, map[string]any{
			"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}},
		})
		applyDryRun(t, "chart without metrics", r.objects, ns)
		for _, kind := range []string{"Service", "ServiceMonitor"} {
			if got := ofKind(r.objects, kind); len(got) != 0 {
				t.Errorf("unexpected %s without metrics", kind)
			}
		}
		_, c := chartDeployment(t, r, "token-operator")
		containsAll(t, "chart Deployment", c.Args, "--metrics-bind-address=0")
		containsNone(t, "chart Deployment", c.Args, "--metrics-secure")
		for _, p := range c.Ports {
			if p.Name == "metrics" {
				t.Errorf("a metrics port without metrics")
			}
		}
	})
}

// TestMakeManifestsCopiesCRDsIntoTheChart: make manifests refreshes the
// chart's copy of the CRDs after controller-gen writes them.
func TestMakeManifestsCopiesCRDsIntoTheChart(t *testing.T) {
	plan, err := exec.Command("make", "-s", "-n", "-C", repoPath(), "manifests").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n manifests: %v\n%s", err, plan)
	}
	gen := strings.Index(string(plan), "output:crd:artifacts:config=config/crd/bases")
	cp := strings.Index(string(plan), "cp config/crd/bases/*.yaml charts/token-operator/files/crds/")
	if gen < 0 || cp < gen {
		t.Errorf("make manifests does not copy the generated CRDs into charts/token-operator/files/crds after generating them:\n%s", plan)
	}
}
