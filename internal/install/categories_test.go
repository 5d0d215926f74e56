package install_test

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// TestCRDCategory: the API server serves the three kinds, and only them,
// under the category token-operator, so `kubectl get token-operator` lists
// TokenRequests and issuers; none claims the generic category "tokens",
// which other products' kinds may use too.
func TestCRDCategory(t *testing.T) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinitionList"})
	if err := k8s.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	var inCategory []string
	for _, crd := range list.Items {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		if group != v1.GroupVersion.Group {
			continue
		}
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		categories, _, _ := unstructured.NestedStringSlice(crd.Object, "spec", "names", "categories")
		if slices.Contains(categories, "tokens") {
			t.Errorf("%s is in the generic category tokens", kind)
		}
		if slices.Contains(categories, "token-operator") {
			inCategory = append(inCategory, kind)
		}
	}
	slices.Sort(inCategory)
	if want := []string{"ClusterTokenIssuer", "TokenIssuer", "TokenRequest"}; !slices.Equal(inCategory, want) {
		t.Errorf("kinds in the category token-operator: %v, want %v", inCategory, want)
	}
}
