package secretdata

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

const secretToken = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLWJvZHk.c2lnbmF0dXJl"

func tokenInput(tpl *v1.SecretTemplate, token string, scopes ...string) Input {
	in := input(tpl)
	in.Token.AccessToken = token
	if scopes != nil {
		in.Token.Scopes = scopes
	}
	return in
}

// expectRefused checks that both ValidateTemplate and Render refuse tpl
// naming field and key, and that no message holds the token.
func expectRefused(t *testing.T, tpl *v1.SecretTemplate, field, key, reason string) {
	t.Helper()
	for name, err := range map[string]error{
		"ValidateTemplate": ValidateTemplate(tpl),
		"Render":           renderErr(tokenInput(tpl, secretToken)),
	} {
		var te *TemplateError
		if !errors.As(err, &te) {
			t.Fatalf("%s: err = %v, want a *TemplateError", name, err)
		}
		if te.Field != field || te.Key != key || !strings.Contains(te.Reason, reason) {
			t.Errorf("%s: got field %q key %q reason %q; want %q %q containing %q", name, te.Field, te.Key, te.Reason, field, key, reason)
		}
		noToken(t, err, secretToken)
	}
}

func renderErr(in Input) error {
	_, err := Render(in)
	return err
}

// noToken fails when the message holds the token or any 6 bytes of it.
func noToken(t *testing.T, err error, token string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for i := 0; i+6 <= len(token); i++ {
		if strings.Contains(msg, token[i:i+6]) {
			t.Fatalf("message %q holds part of the token", msg)
		}
	}
}

func TestForbiddenTemplatesAreRefusedBeforeAnyToken(t *testing.T) {
	cases := []struct {
		name, text, reason string
	}{
		{"a range over a huge number never runs", `{{range 9000000000000000000}}{{end}}x`, "range is allowed only over .Scopes"},
		{"a recursive define and template never runs", `{{define "loop"}}{{template "loop"}}{{end}}{{template "loop"}}`, "define and block are not allowed"},
		{"a template calling itself never runs", `{{template "k"}}`, "template and block are not allowed"},
		{"a block is refused", `{{block "b" .}}x{{end}}`, "define and block are not allowed"},
		{"a define replacing the empty main template is refused", `{{define "k"}}x{{end}}`, "define and block are not allowed"},
		{"printf with a huge width is refused", `{{printf "%999999999d" 1}}`, `function "printf" is not allowed`},
		{"the byte oracle on the token is refused", `{{ if eq (len .AccessToken) 55 }}{{ index .Scopes (index .AccessToken 7) }}{{ end }}`, `function "eq" is not allowed`},
		{"index is refused", `{{ index .AccessToken 7 }}`, `function "index" is not allowed`},
		{"slice is refused", `{{ slice .AccessToken 0 4 }}`, `function "slice" is not allowed`},
		{"call is refused", `{{ call .AccessToken }}`, `function "call" is not allowed`},
		{"len is refused", `{{ len .AccessToken }}`, `function "len" is not allowed`},
		{"a comparison is refused", `{{ if lt .AccessToken "m" }}x{{ end }}`, `function "lt" is not allowed`},
		{"html is refused", `{{ html .AccessToken }}`, `function "html" is not allowed`},
		{"js is refused", `{{ js .AccessToken }}`, `function "js" is not allowed`},
		{"urlquery is refused", `{{ urlquery .AccessToken }}`, `function "urlquery" is not allowed`},
		{"a function that can fail on a value is refused", `{{ b64dec .AccessToken }}`, `function "b64dec" is not allowed`},
		{"a nested range is refused", `{{range .Scopes}}{{range $.Scopes}}{{end}}{{end}}`, "range inside range is not allowed"},
		{"a range nested in with inside a range is refused", `{{range .Scopes}}{{with $}}{{range .Scopes}}{{end}}{{end}}{{end}}`, "range inside range is not allowed"},
		{"a range over the token is refused", `{{range .AccessToken}}{{end}}`, "range is allowed only over .Scopes"},
		{"a range over a function result is refused", `{{range (print .Scopes)}}{{end}}`, "range is allowed only over .Scopes"},
		{"a variable outside range is refused", `{{$x := .AccessToken}}{{$x}}`, "variables may only be declared by range"},
		{"an assignment in range is refused", `{{range $s := .Scopes}}{{$s = "x"}}{{end}}`, "variables may only be declared by range"},
		{"a variable in an if is refused", `{{if $x := .AccessToken}}{{end}}`, "variables may only be declared by range"},
		{"redeclaring $ is refused", `{{range $ := .Scopes}}{{$.AccessToken}}{{end}}`, "$ cannot be redeclared"},
		{"a range variable in the else branch is refused", `{{range $s := .Scopes}}{{else}}{{$s}}{{end}}`, "variable $s is not set here"},
		{"an unknown field is refused", `{{ .Missing }}`, "unknown field .Missing"},
		{"a field of a field is refused", `{{ .AccessToken.Length }}`, ".AccessToken has no fields"},
		{"a field on a range element is refused", `{{range .Scopes}}{{.AccessToken}}{{end}}`, "fields exist only on the top-level values"},
		{"a field of an expression is refused", `{{ (print .AccessToken).Foo }}`, "fields of an expression are not allowed"},
		{"arguments in the wrong order are refused", `{{ join .Scopes " " }}`, "argument 1 of join must be a string, not a list of strings"},
		{"a value of unknown type for a string parameter is refused", `{{ upper (or .AccessToken .Scopes) }}`, "must be a string, not a value of varying type"},
		{"a missing argument is refused", `{{ b64enc }}`, "b64enc takes 1 arguments, not 0"},
		{"an extra argument is refused", `{{ upper .AccessToken .TokenType }}`, "upper takes 1 arguments, not 2"},
		{"nil is refused", `{{ print nil }}`, "nil is not allowed"},
		{"a number overflowing int is refused", `{{ print 18446744073709551615 }}`, "only whole numbers"},
		{"a complex number is refused", `{{ print 1i }}`, "only whole numbers"},
		{"arguments to a field are refused", `{{ .AccessToken 1 }}`, "only a function takes arguments"},
		{"a parse error is reported", `{{ .AccessToken `, "does not parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, &v1.SecretTemplate{Data: map[string]string{"k": tc.text}}, FieldData, "k", tc.reason)
		})
	}
}

func TestDataKeysAndSizesAreBounded(t *testing.T) {
	many := map[string]string{}
	for i := range MaxTemplateKeys + 1 {
		many[fmt.Sprintf("k%02d", i)] = "x"
	}
	large := map[string]string{}
	for i := range 5 {
		large[fmt.Sprintf("k%d", i)] = strings.Repeat("x", 15<<10)
	}
	cases := []struct {
		name        string
		data        map[string]string
		key, reason string
	}{
		{"a key with a slash is refused", map[string]string{"no/slashes": "x"}, "no/slashes", "not a valid Secret data key"},
		{"the key .. is refused", map[string]string{"..": "x"}, "..", "not a valid Secret data key"},
		{"a template longer than 16 KiB is refused", map[string]string{"k": strings.Repeat("x", 16<<10+1)}, "k", "longer than 16 KiB"},
		{"templates longer than 64 KiB together are refused", large, "k4", "together are longer than 64 KiB"},
		{"more than 32 keys are refused", many, "k32", "more than 32 data keys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, &v1.SecretTemplate{Data: tc.data}, FieldData, tc.key, tc.reason)
		})
	}
}

func TestAllowedTemplatesRenderTheExpectedBytes(t *testing.T) {
	registryAuth := base64.StdEncoding.EncodeToString([]byte("app:" + secretToken))
	cases := []struct {
		name, text, want string
	}{
		{"a bearer header", `Bearer {{.AccessToken}}`, "Bearer " + secretToken},
		{"scopes joined by a space", `{{ .Scopes | join " " }}`, "a/.default b"},
		{"scopes joined by range with an index", `{{ range $i, $s := .Scopes }}{{ if $i }},{{ end }}{{ $s }}{{ end }}`, "a/.default,b"},
		{"scopes by range over $.Scopes with break", `{{ range $.Scopes }}{{ . }}{{ break }}{{ end }}`, "a/.default"},
		{"a docker config built with toJson and b64enc",
			`{"auths":{"registry.example.com":{"username":{{ toJson .ClientID }},"password":{{ toJson .AccessToken }},"auth":{{ print .ClientID ":" .AccessToken | b64enc | toJson }}}}}`,
			`{"auths":{"registry.example.com":{"username":"app","password":"` + secretToken + `","auth":"` + registryAuth + `"}}}`},
		{"scopes as JSON", `{{ toJson .Scopes }}`, `["a/.default","b"]`},
		{"the expiry as RFC 3339", `{{ .ExpiresAt | rfc3339 }}`, "2026-11-23T13:00:00Z"},
		{"the expiry as Unix seconds", `{{ unixEpoch .ExpiresAt }}`, fmt.Sprint(issued.Add(3600e9).Unix())},
		{"rfc3339 of something else is empty", `[{{ rfc3339 .AccessToken }}]`, "[]"},
		{"unixEpoch of something else is zero", `{{ unixEpoch "soon" }}`, "0"},
		{"quote, upper, lower and trim", `{{ quote .TokenType }} {{ upper .TokenType }} {{ lower .TokenType }} [{{ trim "  x " }}]`, `"Bearer" BEARER bearer [x]`},
		{"with sets the dot and has an else", `{{ with .ClientID }}client={{ . }}{{ else }}none{{ end }}`, "client=app"},
		{"if with and, or and not", `{{ if and .AccessToken (not (or .TokenType false)) }}no{{ else if .Scopes }}yes{{ end }}`, "yes"},
		{"println ends the line", `{{ println .TokenType 1 }}`, "Bearer 1\n"},
		{"a comment and plain text", `{{/* a comment */}}x`, "x"},
		{"an empty template", ``, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tpl := &v1.SecretTemplate{Data: map[string]string{"k": tc.text}}
			if err := ValidateTemplate(tpl); err != nil {
				t.Fatal(err)
			}
			r, err := Render(tokenInput(tpl, secretToken, "a/.default", "b"))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(r.Data["k"]); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderingStopsAtItsLimits(t *testing.T) {
	kib := strings.Repeat("t", 1<<10)
	scopes := func(n int) []string { return make([]string, n) }
	cases := []struct {
		name   string
		data   map[string]string
		token  string
		scopes []string
		key    string
		reason string
	}{
		{"more than 64 KiB of output is refused", map[string]string{"k": "{{range .Scopes}}{{$.AccessToken}}{{end}}"},
			kib, scopes(100), "k", "renders more than 64 KiB"},
		{"the 64 KiB cap counts all keys of the Secret", map[string]string{"a": "{{range .Scopes}}{{$.AccessToken}}{{end}}", "b": "{{range .Scopes}}{{$.AccessToken}}{{end}}"},
			kib, scopes(40), "b", "renders more than 64 KiB"},
		{"functions handling more than 1 MiB are stopped", map[string]string{"k": "{{range .Scopes}}{{if b64enc (b64enc $.AccessToken)}}{{end}}{{end}}"},
			kib, scopes(500), "k", "its functions handle more than 1 MiB"},
		{"a token with more than 512 scopes is not rendered into .Scopes", map[string]string{"k": "{{ .Scopes | join \" \" }}"},
			secretToken, scopes(513), "k", "more than 512 scopes"},
		{"a large range body over many scopes is refused", map[string]string{"k": "{{range .Scopes}}" + strings.Repeat("{{.}}", 3000) + "{{end}}"},
			secretToken, scopes(512), "k", "too large to range over this many scopes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tpl := &v1.SecretTemplate{Data: tc.data}
			if err := ValidateTemplate(tpl); err != nil {
				t.Fatal(err)
			}
			err := renderErr(tokenInput(tpl, tc.token, tc.scopes...))
			var te *TemplateError
			if !errors.As(err, &te) || te.Key != tc.key || !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("err = %v, want key %q and %q", err, tc.key, tc.reason)
			}
			noToken(t, err, tc.token)
		})
	}
	t.Run("a template not using .Scopes renders with more than 512 scopes", func(t *testing.T) {
		tpl := &v1.SecretTemplate{Data: map[string]string{"k": "Bearer {{ .AccessToken }}"}}
		if _, err := Render(tokenInput(tpl, secretToken, scopes(600)...)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSecretTypes(t *testing.T) {
	docker := map[string]string{corev1.DockerConfigJsonKey: `{"auths":{}}`}
	for _, typ := range []corev1.SecretType{"", corev1.SecretTypeOpaque, "example.com/token", "token"} {
		t.Run(fmt.Sprintf("type %q is allowed", typ), func(t *testing.T) {
			if err := ValidateTemplate(&v1.SecretTemplate{Type: typ}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("basic-auth with a password key is allowed", func(t *testing.T) {
		tpl := &v1.SecretTemplate{Type: corev1.SecretTypeBasicAuth, Data: map[string]string{"password": "{{ .AccessToken }}"}}
		if r, err := Render(tokenInput(tpl, secretToken)); err != nil || r.Type != corev1.SecretTypeBasicAuth {
			t.Fatalf("type %q, err %v", r.Type, err)
		}
	})
	t.Run("dockerconfigjson with a JSON object is allowed", func(t *testing.T) {
		tpl := &v1.SecretTemplate{Type: corev1.SecretTypeDockerConfigJson, Data: docker}
		if _, err := Render(tokenInput(tpl, secretToken)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("dockerconfigjson that renders no JSON object is refused without quoting it", func(t *testing.T) {
		tpl := &v1.SecretTemplate{Type: corev1.SecretTypeDockerConfigJson, Data: map[string]string{corev1.DockerConfigJsonKey: `{{ .AccessToken }}`}}
		err := renderErr(tokenInput(tpl, secretToken))
		var te *TemplateError
		if !errors.As(err, &te) || te.Key != corev1.DockerConfigJsonKey || te.Reason != reasonDockerJSON {
			t.Fatalf("err = %v", err)
		}
		noToken(t, err, secretToken)
	})
	refused := []struct {
		typ    corev1.SecretType
		data   map[string]string
		reason string
	}{
		{corev1.SecretTypeServiceAccountToken, nil, "service account token"},
		{corev1.SecretTypeTLS, nil, "not allowed"},
		{corev1.SecretTypeSSHAuth, nil, "not allowed"},
		{corev1.SecretTypeDockercfg, nil, "not allowed"},
		{corev1.SecretTypeBootstrapToken, nil, "not allowed"},
		{"kubernetes.io/anything-new", nil, "not allowed"},
		{"team.k8s.io/token", nil, "not allowed"},
		{"with space", nil, "not a valid Secret type"},
		{corev1.SecretTypeBasicAuth, map[string]string{"token": "x"}, "needs a username or password key"},
		{corev1.SecretTypeDockerConfigJson, nil, "needs a .dockerconfigjson key"},
	}
	for _, tc := range refused {
		t.Run(fmt.Sprintf("type %q is refused", tc.typ), func(t *testing.T) {
			expectRefused(t, &v1.SecretTemplate{Type: tc.typ, Data: tc.data}, FieldType, string(tc.typ), tc.reason)
		})
	}
}

func TestLabelsAndAnnotations(t *testing.T) {
	many := map[string]string{}
	for i := range MaxMetadataEntries + 1 {
		many[fmt.Sprintf("l%02d", i)] = "x"
	}
	cases := []struct {
		name               string
		labels, annots     map[string]string
		field, key, reason string
	}{
		{"the operator's label prefix is reserved", map[string]string{v1.LabelTokenRequest: "other"}, nil, FieldLabels, v1.LabelTokenRequest, "reserved for the operator"},
		{"the managed-by label is reserved", map[string]string{v1.LabelManagedBy: "me"}, nil, FieldLabels, v1.LabelManagedBy, "reserved for the operator"},
		{"the operator's annotation prefix is reserved", nil, map[string]string{v1.AnnotationInputHash: "x"}, FieldAnnotations, v1.AnnotationInputHash, "reserved for the operator"},
		{"the operator's domain is reserved in any case", nil, map[string]string{"Tokens.Token-Operator.io/x": "x"}, FieldAnnotations, "Tokens.Token-Operator.io/x", "reserved for the operator"},
		{"a subdomain of the operator's domain is reserved", map[string]string{"x.token-operator.io/y": "z"}, nil, FieldLabels, "x.token-operator.io/y", "reserved for the operator"},
		{"an invalid label key is refused", map[string]string{"-bad": "x"}, nil, FieldLabels, "-bad", "not a valid key"},
		{"an invalid label value is refused", map[string]string{"team": "has space"}, nil, FieldLabels, "team", "not a valid label value"},
		{"an invalid annotation key is refused", nil, map[string]string{"a/b/c": "x"}, FieldAnnotations, "a/b/c", "not a valid key"},
		{"more than 32 labels are refused", many, nil, FieldLabels, "l32", "more than 32 labels"},
		{"annotations larger than 64 KiB are refused", nil, map[string]string{"a": strings.Repeat("x", 40<<10), "b": strings.Repeat("x", 40<<10)}, FieldAnnotations, "b", "larger than 64 KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, &v1.SecretTemplate{Labels: tc.labels, Annotations: tc.annots}, tc.field, tc.key, tc.reason)
		})
	}
	t.Run("ordinary labels and annotations are allowed", func(t *testing.T) {
		tpl := &v1.SecretTemplate{Labels: map[string]string{"team": "a", "example.com/tier": ""}, Annotations: map[string]string{"example.com/Owner": "any text, even spaces", v1.LabelManagedBy: "kept"}}
		if err := ValidateTemplate(tpl); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTemplateErrorNamesItsField(t *testing.T) {
	for _, tc := range []struct {
		err  TemplateError
		want string
	}{
		{TemplateError{Key: "k", Reason: "r"}, `secretTemplate.data["k"]: r`},
		{TemplateError{Field: FieldLabels, Key: "team", Reason: "r"}, `secretTemplate.labels["team"]: r`},
		{TemplateError{Field: FieldType, Key: "kubernetes.io/tls", Reason: "r"}, `secretTemplate.type "kubernetes.io/tls": r`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
