package install_test

import (
	"os"
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// checkDefaultExtras asserts the defaults of the PodDisruptionBudget,
// topology spread, extra env and volumes, NetworkPolicy and PrometheusRule.
func checkDefaultExtras(t *testing.T, r rendered, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	pdb := convert[policyv1.PodDisruptionBudget](t, find(t, r.objects, "PodDisruptionBudget", d.Name))
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget: minAvailable %v, maxUnavailable %v; want minAvailable 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
	checkSelects(t, "PodDisruptionBudget", pdb.Spec.Selector, d)
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].TopologyKey != "kubernetes.io/hostname" || tsc[0].WhenUnsatisfiable != corev1.ScheduleAnyway || tsc[0].MaxSkew != 1 {
		t.Errorf("topologySpreadConstraints: %+v", tsc)
	} else {
		checkSelects(t, "topology spread constraint", tsc[0].LabelSelector, d)
	}
	if len(c.Env) != 0 || len(c.VolumeMounts) != 0 {
		t.Errorf("env %+v, volume mounts %+v without extraEnv/extraVolumeMounts", c.Env, c.VolumeMounts)
	}
	for _, kind := range []string{"NetworkPolicy", "PrometheusRule"} {
		if got := ofKind(r.objects, kind); len(got) != 0 {
			t.Errorf("a %s by default", kind)
		}
	}
}

// checkSelects asserts a label selector selects the Deployment's pods.
func checkSelects(t *testing.T, source string, sel *metav1.LabelSelector, d *appsv1.Deployment) {
	t.Helper()
	if sel == nil || len(sel.MatchLabels) == 0 || !reflect.DeepEqual(sel.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("%s selector %+v is not the Deployment's %v", source, sel, d.Spec.Selector.MatchLabels)
	}
}

// checkAllOnExtras asserts what ci/all-on-values.yaml sets for them.
func checkAllOnExtras(t *testing.T, r rendered, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if c.Image != "registry.example.com/platform/token-operator@"+digest {
		t.Errorf("image %q, want repository@digest", c.Image)
	}
	pdb := convert[policyv1.PodDisruptionBudget](t, find(t, r.objects, "PodDisruptionBudget", d.Name))
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(2) {
		t.Errorf("PodDisruptionBudget minAvailable %v, want 2", pdb.Spec.MinAvailable)
	}
	checkSelects(t, "PodDisruptionBudget", pdb.Spec.Selector, d)
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].TopologyKey != "topology.kubernetes.io/zone" || tsc[0].WhenUnsatisfiable != corev1.DoNotSchedule {
		t.Errorf("topologySpreadConstraints do not carry the value: %+v", tsc)
	}
	wantEnv := []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://proxy.example.com:3128"}, {Name: "NO_PROXY", Value: "10.0.0.0/8,.svc,.cluster.local"}}
	if !reflect.DeepEqual(c.Env, wantEnv) {
		t.Errorf("env %+v, want %+v", c.Env, wantEnv)
	}
	pod := d.Spec.Template.Spec
	pod.Volumes = slices.DeleteFunc(slices.Clone(pod.Volumes), func(v corev1.Volume) bool { return v.Name == "kube-api-access" })
	if len(pod.Volumes) != 2 || pod.Volumes[1].Name != "tmp" || pod.Volumes[1].EmptyDir == nil {
		t.Errorf("volumes: %+v", pod.Volumes)
	}
	mounts := slices.DeleteFunc(slices.Clone(c.VolumeMounts), func(m corev1.VolumeMount) bool { return m.Name == "kube-api-access" })
	if len(mounts) != 2 || mounts[1].Name != "tmp" || mounts[1].MountPath != "/tmp" {
		t.Errorf("volume mounts: %+v", mounts)
	}

	np := convert[networkingv1.NetworkPolicy](t, find(t, r.objects, "NetworkPolicy", d.Name))
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("NetworkPolicy selects %v, want the Deployment's pods", np.Spec.PodSelector.MatchLabels)
	}
	if !reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("NetworkPolicy policy types: %v", np.Spec.PolicyTypes)
	}
	ports := func(ps []networkingv1.NetworkPolicyPort) []string {
		var out []string
		for _, p := range ps {
			out = append(out, string(*p.Protocol)+"/"+p.Port.String())
		}
		return out
	}
	cidrs := func(peers []networkingv1.NetworkPolicyPeer) []string {
		var out []string
		for _, p := range peers {
			if p.IPBlock != nil {
				out = append(out, p.IPBlock.CIDR)
			}
		}
		return out
	}
	if len(np.Spec.Ingress) != 1 || !reflect.DeepEqual(ports(np.Spec.Ingress[0].Ports), []string{"TCP/8081", "TCP/9443"}) ||
		len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].NamespaceSelector == nil {
		t.Errorf("NetworkPolicy ingress: %+v", np.Spec.Ingress)
	}
	wantEgress := []struct{ ports, cidrs []string }{
		{[]string{"UDP/53", "TCP/53"}, nil},
		{[]string{"TCP/443", "TCP/6443"}, []string{"10.96.0.1/32", "192.168.0.10/32"}},
		{[]string{"TCP/443", "TCP/8443"}, []string{"0.0.0.0/0"}},
		{[]string{"TCP/3128"}, []string{"10.0.0.5/32"}},
	}
	if len(np.Spec.Egress) != len(wantEgress) {
		t.Errorf("NetworkPolicy egress: %+v", np.Spec.Egress)
	} else {
		for i, w := range wantEgress {
			e := np.Spec.Egress[i]
			if !reflect.DeepEqual(ports(e.Ports), w.ports) || !reflect.DeepEqual(cidrs(e.To), w.cidrs) {
				t.Errorf("NetworkPolicy egress rule %d: ports %v to %v, want %v to %v", i, ports(e.Ports), cidrs(e.To), w.ports, w.cidrs)
			}
		}
	}

	crds := templatedCRDs(r)
	if len(crds) == 0 || len(crds) != len(generatedCRDs(t)) {
		t.Errorf("%d CRD templates with crds.enabled", len(crds))
	}
	for _, crd := range crds {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s without helm.sh/resource-policy: keep: %v", crd.GetName(), crd.GetAnnotations())
		}
	}

	pr := find(t, r.objects, "PrometheusRule", d.Name)
	if pr.GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule labels: %v", pr.GetLabels())
	}
	got, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	if want := alertGroups(t); len(got) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("the chart's PrometheusRule groups differ from config/prometheus/alerts.yaml (copy its spec into charts/token-operator/files/prometheus-rules.yaml)\n got: %v\nwant: %v", got, want)
	}
}

// alertGroups reads the rule groups of config/prometheus/alerts.yaml.
func alertGroups(t *testing.T) []any {
	t.Helper()
	data, err := os.ReadFile(repoPath("config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatal(err)
	}
	groups, _, err := unstructured.NestedSlice(u.Object, "spec", "groups")
	if err != nil || len(groups) == 0 {
		t.Fatalf("no rule groups in config/prometheus/alerts.yaml: %v", err)
	}
	return groups
}

// TestChartExtrasOff: one replica renders no PodDisruptionBudget; turning
// podDisruptionBudget off removes it with more replicas.
func TestChartExtrasOff(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"one replica": {"replicaCount": 1},
		"budget off":  {"podDisruptionBudget": map[string]any{"enabled": false}},
	} {
		t.Run(name, func(t *testing.T) {
			r := renderChart(t, "token-operator", "token-operator-system", values)
			if got := ofKind(r.objects, "PodDisruptionBudget"); len(got) != 0 {
				t.Errorf("a PodDisruptionBudget with %v", values)
			}
		})
	}
}

// TestChartNetworkPolicyAndRulesWithDefaults turns on the NetworkPolicy and
// the PrometheusRule with their default settings: egress on the DNS, API
// server and token ports to any destination, ingress from any source.
func TestChartNetworkPolicyAndRulesWithDefaults(t *testing.T) {
	const ns = "token-operator-np"
	ensureNamespace(t, ns, restricted)
	r := renderChart(t, "token-operator", ns, map[string]any{
		"networkPolicy":  map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
	})
	applyDryRun(t, "chart with the NetworkPolicy and PrometheusRule", r.objects, ns)
	np := convert[networkingv1.NetworkPolicy](t, find(t, r.objects, "NetworkPolicy", "token-operator"))
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 0 || len(np.Spec.Ingress[0].Ports) != 2 ||
		np.Spec.Ingress[0].Ports[1].Port.IntValue() != 8443 {
		t.Errorf("NetworkPolicy ingress: %+v", np.Spec.Ingress)
	}
	wantPorts := [][]int{{53, 53}, {443, 6443}, {443}}
	if len(np.Spec.Egress) != len(wantPorts) {
		t.Fatalf("NetworkPolicy egress: %+v", np.Spec.Egress)
	}
	for i, e := range np.Spec.Egress {
		var ports []int
		for _, p := range e.Ports {
			ports = append(ports, p.Port.IntValue())
		}
		if len(e.To) != 0 || !reflect.DeepEqual(ports, wantPorts[i]) {
			t.Errorf("NetworkPolicy egress rule %d: ports %v to %+v, want %v to anywhere", i, ports, e.To, wantPorts[i])
		}
	}
	pr := find(t, r.objects, "PrometheusRule", "token-operator")
	if got, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups"); !reflect.DeepEqual(got, alertGroups(t)) {
		t.Errorf("PrometheusRule groups differ from config/prometheus/alerts.yaml")
	}
}
