package install_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomize builds a kustomization like `kubectl kustomize dir`.
func kustomize(t *testing.T, fs filesys.FileSystem, dir string) []*unstructured.Unstructured {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	data, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// configWithOptionalParts is config/ in memory, with the ServiceMonitor,
// alert rules and NetworkPolicy commented in from config/default as its
// comments say.
func configWithOptionalParts(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	root := repoPath("config")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		return mem.WriteFile(filepath.Join("/config", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := mem.ReadFile("/config/default/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(k)
	for _, part := range []string{"../prometheus", "../network-policy"} {
		if !strings.Contains(text, "#- "+part+"\n") {
			t.Fatalf("config/default/kustomization.yaml has no commented-out line '#- %s'", part)
		}
		text = strings.Replace(text, "#- "+part+"\n", "- "+part+"\n", 1)
	}
	if err := mem.WriteFile("/config/default/kustomization.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	return mem
}

const kustomizeNamespace = "token-operator-system"

func TestKustomizeDefault(t *testing.T) {
	objs := kustomize(t, filesys.MakeFsOnDisk(), repoPath("config", "default"))
	applyDryRun(t, "kustomize config/default", objs, "default")

	for _, u := range objs {
		if u.GetNamespace() != "" && u.GetNamespace() != kustomizeNamespace {
			t.Errorf("%s outside %s", describe(u), kustomizeNamespace)
		}
	}
	ns := find(t, objs, "Namespace", kustomizeNamespace)
	if ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("the namespace does not enforce the restricted Pod Security Standard: %v", ns.GetLabels())
	}
	find(t, objs, "CustomResourceDefinition", "tokenrequests.tokens.token-operator.io")
	checkManagerRules(t, "kustomize", convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "token-operator-manager-role")))
	binding := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", "token-operator-manager-rolebinding"))
	if binding.RoleRef.Name != "token-operator-manager-role" || binding.Subjects[0].Name != "token-operator-controller-manager" || binding.Subjects[0].Namespace != kustomizeNamespace {
		t.Errorf("manager ClusterRoleBinding: %+v", binding)
	}
	find(t, objs, "ClusterRoleBinding", "token-operator-metrics-auth-rolebinding")
	find(t, objs, "RoleBinding", "token-operator-leader-election-rolebinding")
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "NetworkPolicy"} {
		if len(ofKind(objs, kind)) != 0 {
			t.Errorf("a %s by default: it needs commenting in", kind)
		}
	}

	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "token-operator-controller-manager"))
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	checkRestricted(t, "kustomize Deployment", pod)
	c := pod.Containers[0]
	checkArgsAreFlags(t, "kustomize Deployment", c.Args)
	containsAll(t, "kustomize Deployment", c.Args, "--leader-elect", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081")
	if pod.ServiceAccountName != "token-operator-controller-manager" {
		t.Errorf("service account %q", pod.ServiceAccountName)
	}
	svc := convert[corev1.Service](t, find(t, objs, "Service", "token-operator-controller-manager-metrics-service"))
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("metrics Service selector %v, pod labels %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 8443 || p[0].TargetPort.StrVal != "metrics" || p[0].Name != "https" {
		t.Errorf("metrics Service ports %+v", p)
	}
}

func TestKustomizeWithPrometheusAndNetworkPolicy(t *testing.T) {
	objs := kustomize(t, configWithOptionalParts(t), "/config/default")
	applyDryRun(t, "kustomize config/default with prometheus and network-policy", objs, "default")

	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "token-operator-controller-manager"))
	podLabels := d.Spec.Template.Labels
	svc := convert[corev1.Service](t, find(t, objs, "Service", "token-operator-controller-manager-metrics-service"))

	sm := find(t, objs, "ServiceMonitor", "token-operator-controller-manager-metrics-monitor")
	if sm.GetNamespace() != kustomizeNamespace {
		t.Errorf("ServiceMonitor in %q", sm.GetNamespace())
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %v does not select the metrics Service (labels %v)", sel, svc.Labels)
		}
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != svc.Spec.Ports[0].Name || endpoints[0].(map[string]any)["scheme"] != "https" {
		t.Errorf("ServiceMonitor endpoints %v do not scrape the Service's https port", endpoints)
	} else if endpoints[0].(map[string]any)["honorLabels"] != true {
		// Else the series' namespace label becomes exported_namespace.
		t.Errorf("ServiceMonitor endpoint without honorLabels: true: %v", endpoints[0])
	}

	rule := find(t, objs, "PrometheusRule", "token-operator-alerts")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	var exprs []string
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			exprs = append(exprs, r.(map[string]any)["expr"].(string))
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"token_operator_token_expiration_timestamp_seconds - time() < 600", "token_operator_token_ready == 0",
		`token_operator_token_service_requests_total{result=~"server_error|`, `token_operator_token_problem{reason=~"TokenServiceRejected|`,
		"leader_election_master_status == 1", "token_operator_issuer_ready"} {
		if !strings.Contains(all, want) {
			t.Errorf("alert rules lack %q", want)
		}
	}
	checkMetricNames(t, "config/prometheus/alerts.yaml", all)

	np := convert[networkingv1.NetworkPolicy](t, find(t, objs, "NetworkPolicy", "token-operator-allow-metrics-traffic"))
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("NetworkPolicy podSelector %v does not select the manager pods (%v)", np.Spec.PodSelector.MatchLabels, podLabels)
		}
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8443 {
		t.Errorf("NetworkPolicy ingress %+v does not admit the metrics port", np.Spec.Ingress)
	}
	if !reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy policy types %v: egress must stay open for token endpoints", np.Spec.PolicyTypes)
	}
}
