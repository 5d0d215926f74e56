package install_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
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

// encryptionConfigMarker starts a ```yaml block that holds a kube-apiserver
// --encryption-provider-config file rather than Kubernetes objects.
const encryptionConfigMarker = "# --encryption-provider-config"

// TestDocsEncryptionConfig decodes every encryption configuration of the
// docs strictly into kube-apiserver's types and checks what the API server
// checks of a KMS v2 provider, and that Secrets are written with it first.
func TestDocsEncryptionConfig(t *testing.T) {
	found := 0
	for _, path := range markdownFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range yamlBlocks(t, string(data)) {
			if !strings.HasPrefix(b.text, encryptionConfigMarker) {
				continue
			}
			found++
			source := fmt.Sprintf("%s:%d", rel(path), b.line)
			var cfg apiserverv1.EncryptionConfiguration
			if err := yaml.UnmarshalStrict([]byte(b.text), &cfg); err != nil {
				t.Errorf("%s: %v", source, err)
				continue
			}
			if cfg.APIVersion != "apiserver.config.k8s.io/v1" || cfg.Kind != "EncryptionConfiguration" {
				t.Errorf("%s: %s %s, want apiserver.config.k8s.io/v1 EncryptionConfiguration", source, cfg.APIVersion, cfg.Kind)
			}
			secrets := false
			for _, r := range cfg.Resources {
				if !slices.Contains(r.Resources, "secrets") {
					continue
				}
				secrets = true
				checkSecretProviders(t, source, r.Providers)
			}
			if !secrets {
				t.Errorf("%s: does not encrypt secrets", source)
			}
		}
	}
	if found == 0 {
		t.Fatal("no encryption configuration in the docs")
	}
}

// checkSecretProviders: KMS v2 first, as kube-apiserver's validation wants
// it (a name, a unix socket, a timeout, no cachesize), and identity only
// last, for reading what was written before.
func checkSecretProviders(t *testing.T, source string, providers []apiserverv1.ProviderConfiguration) {
	t.Helper()
	if len(providers) == 0 {
		t.Errorf("%s: no providers for secrets", source)
		return
	}
	kms := providers[0].KMS
	if kms == nil || kms.APIVersion != "v2" {
		t.Errorf("%s: Secrets are not written with a KMS v2 provider first: %+v", source, providers[0])
		return
	}
	if kms.Name == "" || strings.Contains(kms.Name, ":") || !strings.HasPrefix(kms.Endpoint, "unix:///") || kms.CacheSize != nil ||
		kms.Timeout == nil || kms.Timeout.Duration <= 0 {
		t.Errorf("%s: kube-apiserver would refuse the KMS v2 provider %+v", source, kms)
	}
	for i, p := range providers {
		if p.Identity != nil && i != len(providers)-1 {
			t.Errorf("%s: identity is provider %d of %d: it must come last, or Secrets are written in the clear", source, i+1, len(providers))
		}
	}
}
