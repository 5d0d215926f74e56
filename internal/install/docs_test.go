package install_test

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// docsNamespace receives the namespaced examples that name no namespace.
const docsNamespace = "docs-examples"

// helmValuesMarker starts a ```yaml block that holds Helm values rather than
// Kubernetes objects; such blocks are rendered through the chart.
const helmValuesMarker = "# values.yaml"

// yamlBlock is one ```yaml block of a Markdown file.
type yamlBlock struct {
	line int
	text string
}

func yamlBlocks(t *testing.T, markdown string) []yamlBlock {
	t.Helper()
	var blocks []yamlBlock
	var cur *yamlBlock
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(markdown))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && (trimmed == "```yaml" || trimmed == "```yml"):
			cur = &yamlBlock{line: n}
			b.Reset()
		case cur != nil && trimmed == "```":
			cur.text = b.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	if cur != nil {
		t.Fatalf("a ```yaml block at line %d is not closed", cur.line)
	}
	return blocks
}

func markdownFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(repoPath("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{repoPath("README.md")}, docs...)
}

func rel(path string) string {
	r, err := filepath.Rel(repoPath(), path)
	if err != nil {
		return path
	}
	return r
}

// TestDocsExamplesApply applies every ```yaml block of README.md and
// docs/*.md with server-side dry-run. Blocks that start with
// "# values.yaml" are Helm values: the chart is rendered with them and the
// result applied.
func TestDocsExamplesApply(t *testing.T) {
	ensureNamespace(t, docsNamespace, nil)
	total := 0
	for _, path := range markdownFiles(t) {
		t.Run(rel(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var fileObjs []*unstructured.Unstructured
			for _, b := range yamlBlocks(t, string(data)) {
				total++
				source := fmt.Sprintf("%s:%d", rel(path), b.line)
				if strings.HasPrefix(b.text, encryptionConfigMarker) {
					continue // an API server file, not an object: TestDocsEncryptionConfig checks it
				}
				if strings.HasPrefix(b.text, helmValuesMarker) {
					values := map[string]any{}
					if err := yaml.Unmarshal([]byte(b.text), &values); err != nil {
						t.Errorf("%s: Helm values do not parse: %v", source, err)
						continue
					}
					r := renderChart(t, "token-operator", "token-operator-system", values)
					ensureNamespace(t, "token-operator-system", restricted)
					applyDryRun(t, source+" (rendered through the chart)", r.objects, "token-operator-system")
					continue
				}
				objs, err := decodeObjects([]byte(b.text))
				if err != nil {
					t.Errorf("%s: %v", source, err)
					continue
				}
				if len(objs) == 0 {
					t.Errorf("%s: an empty yaml block", source)
				}
				applyDryRun(t, source, objs, docsNamespace)
				fileObjs = append(fileObjs, objs...)
			}
			checkCredentialsCarryConsent(t, rel(path), fileObjs)
		})
	}
	if total == 0 {
		t.Fatal("no yaml blocks found")
	}
}

// TestSamplesApply applies every file of config/samples/ with server-side
// dry-run, and the samples kustomization as a whole.
func TestSamplesApply(t *testing.T) {
	ensureNamespace(t, docsNamespace, nil)
	files, err := filepath.Glob(repoPath("config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			objs := kustomize(t, filesys.MakeFsOnDisk(), filepath.Dir(f))
			if len(objs) == 0 {
				t.Errorf("config/samples kustomization renders nothing")
			}
			applyDryRun(t, "kustomize config/samples", objs, docsNamespace)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeObjects(data)
		if err != nil {
			t.Errorf("%s: %v", rel(f), err)
			continue
		}
		applyDryRun(t, rel(f), objs, docsNamespace)
		checkCredentialsCarryConsent(t, rel(f), objs)
	}
}

// checkCredentialsCarryConsent: every TokenRequest's credential (Secret or
// ServiceAccount) appears in the same example and its allowed-issuers
// annotation admits the TokenRequest's token host.
func checkCredentialsCarryConsent(t *testing.T, source string, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range ofKind(objs, "TokenRequest") {
		tr := convert[v1.TokenRequest](t, u)
		kind, name := "", ""
		switch c := tr.Spec.Credential; {
		case c == nil:
			continue // an issuerRef: the issuer holds the credential
		case c.ClientSecret != nil:
			kind, name = "Secret", c.ClientSecret.Name
		case c.Certificate != nil:
			kind, name = "Secret", c.Certificate.SecretName
		case c.ServiceAccount != nil:
			kind, name = "ServiceAccount", c.ServiceAccount.Name
		}
		var cred *unstructured.Unstructured
		for _, o := range ofKind(objs, kind) {
			if o.GetName() == name && o.GetNamespace() == u.GetNamespace() {
				cred = o
			}
		}
		if cred == nil {
			t.Errorf("%s: TokenRequest %s uses %s %q, which the example does not show", source, tr.Name, kind, name)
			continue
		}
		annotation, ok := cred.GetAnnotations()[v1.AnnotationAllowedIssuers]
		if !ok {
			t.Errorf("%s: %s %q has no %s annotation", source, kind, name, v1.AnnotationAllowedIssuers)
			continue
		}
		endpoint := tr.Spec.Authority + tr.Spec.IssuerURL + tr.Spec.TokenURL
		if a := tr.Spec.AWS; a != nil {
			endpoint = (&tokensource.AWSRole{Region: a.Region, Endpoint: a.Endpoint}).URL()
		}
		hosts := []string{endpoint}
		if tr.Spec.AzureRegion != "" {
			hosts = append(hosts, "https://"+tr.Spec.AzureRegion+".login.microsoft.com/")
		}
		if g := tr.Spec.Google; g != nil {
			hosts = []string{cmp.Or(g.STSURL, tokensource.DefaultGoogleSTSURL)}
			if g.ServiceAccountEmail != "" {
				hosts = append(hosts, cmp.Or(g.IAMCredentialsURL, tokensource.DefaultGoogleIAMCredentialsURL))
			}
		}
		for _, h := range hosts {
			if !consentAdmits(annotation, h) {
				t.Errorf("%s: %s %q annotation %q does not admit %s", source, kind, name, annotation, h)
			}
		}
	}
}

// consentAdmits is the operator's own consent check: the annotation read
// as the controller reads it, the endpoint checked as every token request
// is checked before anything is sent.
func consentAdmits(annotation, endpoint string) bool {
	req := tokensource.Request{
		TokenURL:     endpoint,
		AllowedHosts: resolve.ConsentHosts(map[string]string{v1.AnnotationAllowedIssuers: annotation}),
	}
	return req.CheckConfiguredHost() == nil
}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)

// TestDocsLinks: README.md links every page of docs/, and relative links
// in the docs point at files that exist.
func TestDocsLinks(t *testing.T) {
	readme := readFile(t, "README.md")
	for _, path := range markdownFiles(t)[1:] {
		if !strings.Contains(readme, "](docs/"+filepath.Base(path)+")") {
			t.Errorf("README.md does not link %s", rel(path))
		}
	}
	for _, path := range markdownFiles(t) {
		data, _ := os.ReadFile(path)
		for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), target)); err != nil {
				t.Errorf("%s links %s, which does not exist", rel(path), target)
			}
		}
	}
}

// TestMetricsDocNamesEveryMetric: docs/metrics.md documents every metric
// and names no metric the operator lacks.
func TestMetricsDocNamesEveryMetric(t *testing.T) {
	text := readFile(t, "docs", "metrics.md")
	checkMetricNames(t, "docs/metrics.md", text)
	var names []string
	for n := range operatorMetricNames(t) {
		if !strings.HasSuffix(n, "_bucket") && !strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.Contains(text, "`"+n+"`") {
			t.Errorf("docs/metrics.md does not document %s", n)
		}
	}
}

// TestConsentRuleOfTheDocs pins the operator's consent check to the
// host:port rule the docs state.
func TestConsentRuleOfTheDocs(t *testing.T) {
	cases := []struct {
		annotation, endpoint string
		want                 bool
	}{
		{"login.microsoftonline.com", "https://login.microsoftonline.com/tenant", true},
		{"Login.MicrosoftOnline.com", "https://login.microsoftonline.com/tenant", true},
		{"login.example.com", "https://login.example.com:8443/token", false},
		{"login.example.com:8443", "https://login.example.com:8443/token", true},
		{"login.example.com:8443", "https://login.example.com/token", false},
		{"a.example.com, b.example.com", "https://b.example.com/token", true},
		{"localhost", "http://localhost/token", true},
		{"localhost", "http://localhost:4444/token", false},
		{"[::1]:4444", "http://[::1]:4444/token", true},
		{"example.com", "https://idp.example.com/token", false},
	}
	for _, c := range cases {
		if got := consentAdmits(c.annotation, c.endpoint); got != c.want {
			t.Errorf("annotation %q, endpoint %s: admitted %v, want %v", c.annotation, c.endpoint, got, c.want)
		}
	}
}
