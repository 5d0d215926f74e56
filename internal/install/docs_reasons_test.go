package install_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// reasonConstants reads every Reason* string constant of api/v1alpha1, so a
// reason added there without documentation fails the test below.
func reasonConstants(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(repoPath("api", "v1alpha1", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: %s is not a string literal", rel(f), name.Name)
					}
					value, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					reasons[name.Name] = value
				}
			}
		}
	}
	if len(reasons) < 10 {
		t.Fatalf("found only %d reasons in api/v1alpha1: %v", len(reasons), reasons)
	}
	return reasons
}

// TestDocsNameEveryReason: README.md's reason list and docs/troubleshooting.md
// name every condition and event reason the API defines.
func TestDocsNameEveryReason(t *testing.T) {
	reasons := reasonConstants(t)
	names := make([]string, 0, len(reasons))
	for name := range reasons {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, doc := range []string{"README.md", filepath.Join("docs", "troubleshooting.md")} {
		text := readFile(t, doc)
		for _, name := range names {
			if !strings.Contains(text, "`"+reasons[name]+"`") {
				t.Errorf("%s does not name the reason `%s` (v1alpha1.%s)", doc, reasons[name], name)
			}
		}
	}
}

// TestReadmeNamesEverySpecDefault: README.md says which spec fields the CRDs
// default (the API server writes those into spec), and names each one.
func TestReadmeNamesEverySpecDefault(t *testing.T) {
	files, err := filepath.Glob(repoPath("config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs: %v", err)
	}
	var defaulted []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", rel(f), err)
		}
		for _, v := range crd.Spec.Versions {
			spec, ok := v.Schema.OpenAPIV3Schema.Properties["spec"]
			if !ok {
				continue
			}
			defaulted = append(defaulted, schemaDefaults(spec, "")...)
		}
	}
	if len(defaulted) == 0 {
		t.Fatal("no spec field has a default: the README statement about defaults needs checking")
	}
	readme := readFile(t, "README.md")
	for _, path := range defaulted {
		if !strings.Contains(readme, "`"+path+"`") {
			t.Errorf("the CRD defaults spec.%s, which README.md's note on defaults does not name", path)
		}
	}
}

// schemaDefaults lists the dotted paths (arrays as []) below s that have a default.
func schemaDefaults(s apiextensionsv1.JSONSchemaProps, path string) []string {
	var out []string
	if s.Default != nil && path != "" {
		out = append(out, path)
	}
	for name, p := range s.Properties {
		child := name
		if path != "" {
			child = path + "." + name
		}
		out = append(out, schemaDefaults(p, child)...)
	}
	if s.Items != nil && s.Items.Schema != nil {
		out = append(out, schemaDefaults(*s.Items.Schema, path+"[]")...)
	}
	return out
}
