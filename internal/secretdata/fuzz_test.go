package secretdata

import (
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// Two tokens of one length and alphabet: an accepted template must render
// both or fail on both with the same message, else its outcome is an oracle
// on the token's content.
const (
	fuzzTokenA = "AAAAsecretTOKENvalue0123456789abcdefXYZ"
	fuzzTokenB = "ZZZZhiddenCREDSvalue9876543210zyxwvuABC"
)

func FuzzValidateTemplate(f *testing.F) {
	for _, seed := range []string{
		"Bearer {{ .AccessToken }}",
		`{{ .Scopes | join " " }}`,
		`{{ range $i, $s := .Scopes }}{{ if $i }},{{ end }}{{ $s | upper | quote }}{{ else }}none{{ end }}`,
		`{"auths":{"r":{"auth":{{ print .ClientID ":" .AccessToken | b64enc | toJson }}}}}`,
		`{{ with .ExpiresAt }}{{ rfc3339 . }} {{ unixEpoch . }}{{ end }}`,
		`{{ if and .AccessToken (not .Scopes) }}{{ or .TokenType 1 }}{{ end }}{{ println . $ }}`,
		`{{ range .Scopes }}{{ break }}{{ continue }}{{ end }}{{ trim (lower .ClientID) }}`,
		`{{range 9000000000000000000}}{{end}}x`,
		`{{define "loop"}}{{template "loop"}}{{end}}{{template "loop"}}`,
		`{{ printf "%999999999d" 1 }}`,
		`{{ if eq (len .AccessToken) 55 }}{{ index .Scopes (index .AccessToken 7) }}{{ end }}`,
		`{{ slice .AccessToken 1 }}{{ call .AccessToken }}`,
		`{{range .Scopes}}{{range $.Scopes}}{{end}}{{end}}`,
		`{{range .Scopes}}{{$.AccessToken}}{{$.AccessToken}}{{$.AccessToken}}{{end}}`,
		`{{ toJson (toJson (toJson (toJson (toJson .AccessToken)))) }}`,
		`{{ (((.AccessToken))) }}{{/* c */}}{{- " x " -}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		tpl := &v1.SecretTemplate{Data: map[string]string{"k": text}}
		if err := ValidateTemplate(tpl); err != nil {
			var te *TemplateError
			if !errors.As(err, &te) || te.Key != "k" || te.Field != FieldData {
				t.Fatalf("ValidateTemplate: %v", err)
			}
			if renderErr(tokenInput(tpl, fuzzTokenA)) == nil {
				t.Fatal("Render ran a template that ValidateTemplate refused")
			}
			return
		}
		scopes := []string{"api://app/.default", "", "a b", "é"}
		start := time.Now()
		_, errA := Render(tokenInput(tpl, fuzzTokenA, scopes...))
		_, errB := Render(tokenInput(tpl, fuzzTokenB, scopes...))
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("rendering took %v", d)
		}
		for _, err := range []error{errA, errB} {
			if err == nil {
				continue
			}
			var te *TemplateError
			if !errors.As(err, &te) || te.Key != "k" {
				t.Fatalf("Render: %v", err)
			}
			for _, tok := range []string{fuzzTokenA, fuzzTokenB} {
				if strings.Contains(err.Error(), tok[4:20]) {
					t.Fatalf("error holds the token: %v", err)
				}
			}
		}
		if (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
			t.Fatalf("the outcome depends on the token: %v / %v", errA, errB)
		}
	})
}
