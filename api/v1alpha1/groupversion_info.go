// Package v1alpha1 contains the TokenRequest API of the tokens.token-operator.io group.
// +kubebuilder:object:generate=true
// +groupName=tokens.token-operator.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the TokenRequest API.
	GroupVersion = schema.GroupVersion{Group: "tokens.token-operator.io", Version: "v1alpha1"}

	// SchemeBuilder registers the API types with a runtime scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
