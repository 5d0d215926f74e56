package v1alpha1_test

import (
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// kubectl explain shows these descriptions: every field needs one.
func TestEveryCRDFieldHasADescription(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "tokens.token-operator.io_tokenrequests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	fields := 0
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		for name, p := range s.Properties {
			fields++
			if p.Description == "" && name != "apiVersion" && name != "kind" && name != "metadata" {
				t.Errorf("%s.%s has no description", path, name)
			}
			walk(path+"."+name, p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", *s.Items.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		walk(v.Name, *v.Schema.OpenAPIV3Schema)
	}
	if fields < 40 {
		t.Fatalf("only %d fields walked; the schema did not parse as expected", fields)
	}
}
