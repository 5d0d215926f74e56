package secretdata

import (
	"testing"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func BenchmarkRenderDefault(b *testing.B) {
	in := input(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderTemplate(b *testing.B) {
	in := input(&v1.SecretTemplate{Data: map[string]string{"authorization": "{{ .TokenType }} {{ .AccessToken }}"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}
