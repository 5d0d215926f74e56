package operator

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	tokensv1alpha1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// NewScheme returns a scheme with the built-in types and the TokenRequest API.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := tokensv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
