package secretdata

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

var issued = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

func input(tpl *v1.SecretTemplate) Input {
	return Input{TokenRequestName: "graph", ClientID: "app", Template: tpl, InputHash: "h1", Token: Token{
		AccessToken: "opaque-token-value", TokenType: "Bearer", Scopes: []string{"a/.default"},
		IssuedAt: issued, ExpiresAt: issued.Add(time.Hour), RefreshAt: issued.Add(40 * time.Minute),
	}}
}

func TestRender(t *testing.T) {
	cases := []struct {
		name  string
		tpl   *v1.SecretTemplate
		check func(t *testing.T, r Rendered)
	}{
		{"without a template the default keys are written", nil, func(t *testing.T, r Rendered) {
			if string(r.Data[v1.KeyAccessToken]) != "opaque-token-value" || string(r.Data[v1.KeyTokenType]) != "Bearer" ||
				string(r.Data[v1.KeyExpiresAt]) != "2026-11-23T13:00:00Z" || len(r.Data) != 3 {
				t.Errorf("data = %q", r.Data)
			}
			if r.Type != corev1.SecretTypeOpaque || r.Labels[v1.LabelTokenRequest] != "graph" || r.Labels[v1.LabelManagedBy] != v1.ManagedByValue {
				t.Errorf("type %q labels %v", r.Type, r.Labels)
			}
		}},
		{"a template adds keys, labels, annotations and a type", &v1.SecretTemplate{
			Type: "example.com/token", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "b"},
			Data: map[string]string{"authorization": "{{ .TokenType }} {{ .AccessToken }}", "scopes": `{{ .Scopes | join " " }}`},
		}, func(t *testing.T, r Rendered) {
			if string(r.Data["authorization"]) != "Bearer opaque-token-value" || string(r.Data["scopes"]) != "a/.default" ||
				r.Type != "example.com/token" || r.Labels["team"] != "a" || r.Annotations["note"] != "b" {
				t.Errorf("rendered %+v", r)
			}
		}},
		{"a template key replaces a default key", &v1.SecretTemplate{Data: map[string]string{v1.KeyAccessToken: "Bearer {{ .AccessToken }}"}}, func(t *testing.T, r Rendered) {
			if string(r.Data[v1.KeyAccessToken]) != "Bearer opaque-token-value" {
				t.Errorf("access_token = %q", r.Data[v1.KeyAccessToken])
			}
		}},
		{"the bookkeeping annotations are written", nil, func(t *testing.T, r Rendered) {
			a := r.Annotations
			if a[v1.AnnotationIssuedAt] != "2026-11-23T12:00:00.123456789Z" || a[v1.AnnotationExpiresAt] != "2026-11-23T13:00:00Z" ||
				a[v1.AnnotationRefreshAt] != "2026-11-23T12:40:00Z" || a[v1.AnnotationInputHash] != "h1" || a[AnnotationDataHash] == "" {
				t.Errorf("annotations = %v", a)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Render(input(tc.tpl))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestTemplateErrorsNeverQuoteRenderedValues(t *testing.T) {
	for name, text := range map[string]string{
		"an unknown field":   "{{ .Missing }}",
		"a parse error":      "{{ .AccessToken ",
		"a failing function": `{{ index .AccessToken 999 }}`,
		"a bad key":          "x",
	} {
		t.Run(name, func(t *testing.T) {
			key := "k"
			if name == "a bad key" {
				key = "no/slashes"
			}
			_, err := Render(input(&v1.SecretTemplate{Data: map[string]string{key: text}}))
			if err == nil || strings.Contains(err.Error(), "opaque-token-value") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestReadGivesBackWhatRenderWrote(t *testing.T) {
	r, err := Render(input(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{}
	if !Apply(s, r) {
		t.Fatal("Apply on an empty Secret reported no change")
	}
	if Apply(s, r) {
		t.Error("a second Apply changed the Secret")
	}
	st := Read(s)
	if !st.IssuedAt.Equal(issued) || !st.ExpiresAt.Equal(issued.Add(time.Hour).Truncate(time.Second)) || st.InputHash != "h1" || !st.Intact || !st.HasToken || st.TemplateHash != TemplateHash(nil) {
		t.Errorf("state = %+v", st)
	}
	s.Data[v1.KeyAccessToken] = []byte("edited")
	if Read(s).Intact {
		t.Error("an edited Secret reads as intact")
	}
	s.Labels["other"] = "kept"
	Apply(s, r)
	if s.Labels["other"] != "kept" || !Read(s).Intact {
		t.Error("Apply did not restore the data or dropped a foreign label")
	}
}
