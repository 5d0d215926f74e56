// Package v1alpha1 contains the TokenRequest, TokenIssuer and ClusterTokenIssuer API of the tokens.token-operator.io group.
// +kubebuilder:object:generate=true
// +groupName=tokens.token-operator.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the TokenRequest API.
	GroupVersion = schema.GroupVersion{Group: "tokens.token-operator.io", Version: "v1alpha1"}

	// SchemeBuilder registers the API types with a runtime scheme. The API
	// package depends on apimachinery only, so that it is cheap to import.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TokenRequest{}, &TokenRequestList{},
		&TokenIssuer{}, &TokenIssuerList{}, &ClusterTokenIssuer{}, &ClusterTokenIssuerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
