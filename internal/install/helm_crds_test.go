package install_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// generatedCRDs decodes config/crd/bases/*.yaml.
func generatedCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	paths, err := filepath.Glob(repoPath("config", "crd", "bases", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no generated CRDs in config/crd/bases: %v", err)
	}
	var out []*unstructured.Unstructured
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeObjects(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, objs...)
	}
	return out
}

// templatedCRDs are the CRDs the chart renders (crds.enabled).
func templatedCRDs(r rendered) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range ofKind(r.objects, "CustomResourceDefinition") {
		if o.GetLabels()["app.kubernetes.io/managed-by"] == "Helm" {
			out = append(out, o)
		}
	}
	return out
}

// TestChartCRDTemplates: by default the chart renders the generated CRDs
// themselves, with the release's labels and, with crds.keep (the default),
// Helm's keep resource policy; crds.enabled=false renders none.
func TestChartCRDTemplates(t *testing.T) {
	off := renderChart(t, "token-operator", "token-operator-system", map[string]any{"crds": map[string]any{"enabled": false}})
	if got := ofKind(off.objects, "CustomResourceDefinition"); len(got) != 0 {
		t.Errorf("CRDs with crds.enabled=false: %v", describe(got[0]))
	}
	want := generatedCRDs(t)
	for name, tc := range map[string]struct {
		values map[string]any
		keep   bool
	}{
		"default values": {nil, true},
		"no keep":        {map[string]any{"crds": map[string]any{"keep": false}}, false},
	} {
		keep := tc.keep
		t.Run(name, func(t *testing.T) {
			r := renderChart(t, "token-operator", "token-operator-system", tc.values)
			got := templatedCRDs(r)
			if len(got) != len(want) {
				t.Fatalf("%d CRD templates, want %d", len(got), len(want))
			}
			for i := range got {
				c := got[i].DeepCopy()
				if policy, ok := c.GetAnnotations()["helm.sh/resource-policy"]; ok != keep || (keep && policy != "keep") {
					t.Errorf("%s: annotations %v, keep %v", c.GetName(), c.GetAnnotations(), keep)
				}
				if c.GetLabels()["app.kubernetes.io/instance"] != "token-operator" {
					t.Errorf("%s: labels %v", c.GetName(), c.GetLabels())
				}
				a := c.GetAnnotations()
				delete(a, "helm.sh/resource-policy")
				c.SetAnnotations(a)
				c.SetLabels(want[i].GetLabels())
				if !reflect.DeepEqual(c.Object, want[i].Object) {
					t.Errorf("the templated CRD %s differs from config/crd/bases", c.GetName())
				}
			}
		})
	}
}
