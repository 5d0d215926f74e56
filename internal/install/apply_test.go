package install_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// fieldOwner is the field manager of the test's server-side applies.
const fieldOwner = "token-operator-install-test"

// warningCollector keeps the warnings the API server sends, such as Pod
// Security violations of a workload in a namespace labelled warn=restricted.
type warningCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningCollector) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, message)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

func repoPath(parts ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot()}, parts...)...)
}

// decodeObjects splits multi-document YAML into objects, skipping empty documents.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("a document without apiVersion and kind:\n%s", doc)
		}
		objs = append(objs, u)
	}
}

func describe(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}

// restricted labels a namespace to enforce the restricted Pod Security
// Standard and to warn about workloads that break it: the API server then
// sends a warning when a Deployment's pod template would be refused.
var restricted = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
}

// ensureNamespace creates a namespace for real (dry-run objects need their
// namespace to exist) unless it exists.
func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(labels)
	if err := k8s.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// applyDryRun applies every object with server-side apply and dry-run, the
// way `kubectl apply --server-side --dry-run=server` does: the API server
// runs defaulting, schema and CEL validation and admission, and stores
// nothing. Namespaced objects without a namespace go to defaultNamespace;
// missing namespaces are created. Warnings from the API server fail the test.
func applyDryRun(t *testing.T, source string, objs []*unstructured.Unstructured, defaultNamespace string) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range objs {
		u := obj.DeepCopy()
		if u.GetKind() == "Namespace" {
			// The operator's own namespace: create it warning on restricted violations.
			labels := map[string]string{"pod-security.kubernetes.io/warn": "restricted"}
			for k, v := range u.GetLabels() {
				labels[k] = v
			}
			ensureNamespace(t, u.GetName(), labels)
		}
		namespaced, err := k8s.IsObjectNamespaced(u)
		if err != nil {
			t.Errorf("%s: %s: kind unknown to the API server: %v", source, describe(u), err)
			continue
		}
		if namespaced {
			if u.GetNamespace() == "" {
				u.SetNamespace(defaultNamespace)
			}
			ensureNamespace(t, u.GetNamespace(), nil)
		} else if u.GetNamespace() != "" {
			t.Errorf("%s: %s: a cluster-scoped object with a namespace", source, describe(u))
		}
		_ = warnings.take()
		err = k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.DryRunAll, client.ForceOwnership, client.FieldOwner(fieldOwner))
		if err != nil {
			t.Errorf("%s: %s: refused by the API server: %v", source, describe(u), err)
			continue
		}
		for _, w := range warnings.take() {
			if placeholderTLS(obj, w) {
				t.Logf("%s: %s: expected warning for placeholder certificate text: %s", source, describe(u), w)
				continue
			}
			t.Errorf("%s: %s: the API server warns: %s", source, describe(u), w)
		}
	}
}

// placeholderTLS says whether warning is the API server's complaint about a
// kubernetes.io/tls Secret whose certificate is placeholder text, as in the
// examples ("replace with the PEM certificate"): real PEM data does not warn.
func placeholderTLS(u *unstructured.Unstructured, warning string) bool {
	if u.GetKind() != "Secret" || !strings.HasPrefix(warning, "tls: ") {
		return false
	}
	crt, _, _ := unstructured.NestedString(u.Object, "stringData", "tls.crt")
	return crt != "" && !strings.Contains(crt, "-----BEGIN")
}

// find returns the one object of kind and name, failing the test otherwise.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		var all []string
		for _, u := range objs {
			all = append(all, describe(u))
		}
		t.Fatalf("want one %s %q, found %d among: %s", kind, name, len(found), strings.Join(all, ", "))
	}
	return found[0]
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// convert turns an unstructured object into a typed one.
func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s: %v", describe(u), err)
	}
	return out
}

// generatedManagerRules are the rules of config/rbac/role.yaml, which
// controller-gen writes from the +kubebuilder:rbac markers.
func generatedManagerRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(repoPath("config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(data)
	if err != nil || len(objs) != 1 {
		t.Fatalf("config/rbac/role.yaml: want one ClusterRole: %v", err)
	}
	return convert[rbacv1.ClusterRole](t, objs[0]).Rules
}

// managerFlags are the flags the manager binary defines: those cmd/manager
// registers on the flag package, read from its source, plus zap's.
func managerFlags(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, repoPath("cmd", "manager", "main.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "flag" || !strings.HasSuffix(sel.Sel.Name, "Var") || len(call.Args) < 2 {
			return true
		}
		if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			name, _ := strconv.Unquote(lit.Value)
			names[name] = true
		}
		return true
	})
	fs := flag.NewFlagSet("zap", flag.ContinueOnError)
	(&zap.Options{}).BindFlags(fs)
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	names["kubeconfig"] = true // registered by controller-runtime's config package
	for _, want := range []string{"metrics-bind-address", "metrics-secure", "leader-elect", "namespace", "ca-bundle", "zap-log-level"} {
		if !names[want] {
			t.Fatalf("reading cmd/manager/main.go: flag --%s not found (found %v)", want, names)
		}
	}
	return names
}

// checkArgsAreFlags fails for any argument that is no flag of the manager.
func checkArgsAreFlags(t *testing.T, source string, args []string) {
	t.Helper()
	known := managerFlags(t)
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !known[name] {
			t.Errorf("%s: manager argument %q is not a flag of cmd/manager", source, a)
		}
	}
}

// monitoringCRDs are minimal definitions of the Prometheus Operator's
// ServiceMonitor and PrometheusRule, enough to apply those objects.
const monitoringCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [endpoints, selector]
            x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [groups]
            x-kubernetes-preserve-unknown-fields: true
`

func installMonitoringCRDs(ctx context.Context) error {
	objs, err := decodeObjects([]byte(monitoringCRDs))
	if err != nil {
		return err
	}
	for _, u := range objs {
		if err := k8s.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		for {
			_, err := k8s.RESTMapper().RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: kind}, "v1")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s never became known: %w", kind, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

func containsAll(t *testing.T, source string, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("%s: want argument %q in %q", source, w, args)
		}
	}
}

func containsNone(t *testing.T, source string, args []string, prefixes ...string) {
	t.Helper()
	for _, a := range args {
		for _, p := range prefixes {
			if strings.HasPrefix(a, p) {
				t.Errorf("%s: unexpected argument %q", source, a)
			}
		}
	}
}

func readFile(t *testing.T, parts ...string) string {
	t.Helper()
	data, err := os.ReadFile(repoPath(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
