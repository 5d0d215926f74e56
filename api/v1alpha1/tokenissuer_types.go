package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IssuerSpec is what a platform team registers once: the token issuer, the
// client and its credential, and which scopes TokenRequests may ask for.
type IssuerSpec struct {
	// Authority is a Microsoft Entra ID authority, handled through MSAL Go:
	// https://login.microsoftonline.com/<tenant> or a sovereign cloud's.
	// Exactly one of authority, issuerURL and tokenURL is set.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="authority must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	Authority string `json:"authority,omitempty"`

	// IssuerURL is an OpenID Connect issuer; the token endpoint is read from
	// its discovery document.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="issuerURL must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	IssuerURL string `json:"issuerURL,omitempty"`

	// TokenURL is the token endpoint of an OAuth2 server.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="tokenURL must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	TokenURL string `json:"tokenURL,omitempty"`

	// AzureRegion asks Microsoft Entra ID for a regional token service. Only with authority.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+$`
	AzureRegion string `json:"azureRegion,omitempty"`

	// ClientID is the application (client) ID registered with the token
	// issuer. Required unless aws or google is set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	ClientID string `json:"clientID,omitempty"`

	// Credential is how the client proves its identity. A TokenIssuer's
	// credential is in its own namespace; a ClusterTokenIssuer's is in the
	// operator's cluster resource namespace (--cluster-resource-namespace).
	// The credential must still carry the tokens.token-operator.io/allowed-issuers annotation.
	Credential Credential `json:"credential"`

	// ExtraParameters are extra form fields sent to a generic token endpoint.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'scope']))",message="extraParameters cannot set grant_type, client_id, client_secret, client_assertion, client_assertion_type or scope"
	ExtraParameters map[string]string `json:"extraParameters,omitempty"`

	// AllowedScopes are the scopes TokenRequests may ask for, as patterns in
	// which * matches any run of characters (api://orders/*, *.read). A
	// TokenRequest asking for any other scope, or for none, is refused
	// without a token call. Absent: any scopes. Each pattern, like each
	// scope, is an RFC 6749 scope-token: printable ASCII without space,
	// double quote or backslash.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`self.all(s, s.matches(r'^[\x21\x23-\x5B\x5D-\x7E]+$'))`,message="each allowedScopes pattern must be an RFC 6749 scope-token: printable ASCII without space, double quote or backslash (* included)"
	AllowedScopes []string `json:"allowedScopes,omitempty"`

	// TokenExchange gets tokens by RFC 8693 token exchange instead of client
	// credentials. The issuer fixes the subject; its audience and resources
	// apply unless a TokenRequest chooses others in spec.exchange, within
	// allowedAudiences and allowedResources. Only with issuerURL or tokenURL.
	// +optional
	TokenExchange *TokenExchange `json:"tokenExchange,omitempty"`

	// AWS gets temporary AWS credentials from STS AssumeRoleWithWebIdentity
	// with a token of credential.serviceAccount.
	// +optional
	AWS *AWSTarget `json:"aws,omitempty"`

	// Google gets a Google Cloud access token by workload identity
	// federation with a token of credential.serviceAccount.
	// +optional
	Google *GoogleTarget `json:"google,omitempty"`
}

// TokenIssuerSpec is an issuer for the TokenRequests of one namespace.
//
// +kubebuilder:validation:XValidation:rule="[has(self.authority), has(self.issuerURL), has(self.tokenURL), has(self.aws), has(self.google)].filter(x, x).size() == 1",message="set exactly one token issuer: authority (Microsoft Entra ID), issuerURL (OIDC discovery), tokenURL (OAuth2 token endpoint), aws (AWS STS) or google (Google workload identity federation)"
// +kubebuilder:validation:XValidation:rule="has(self.aws) || has(self.google) || has(self.clientID)",message="clientID is required unless aws or google is set"
// +kubebuilder:validation:XValidation:rule="!(has(self.aws) || has(self.google)) || has(self.credential.serviceAccount)",message="aws and google take a serviceAccount credential: the operator exchanges a token of that ServiceAccount"
// +kubebuilder:validation:XValidation:rule="!(has(self.aws) || has(self.google)) || !(has(self.clientID) || has(self.extraParameters) || has(self.tokenExchange))",message="with aws or google, leave out clientID, extraParameters and tokenExchange"
// +kubebuilder:validation:XValidation:rule="!has(self.azureRegion) || has(self.authority)",message="azureRegion applies only with authority (Microsoft Entra ID)"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.authority)",message="tokenExchange applies only with issuerURL or tokenURL"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.tokenExchange.subjectToken.tokenRequestRef)",message="an issuer fixes its subject: tokenExchange.subjectToken.tokenRequestRef applies only on a TokenRequest"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.tokenExchange.clientAuthentication) || self.tokenExchange.clientAuthentication != 'None'",message="an issuer authenticates its client with its credential: tokenExchange.clientAuthentication None applies only on a TokenRequest"
type TokenIssuerSpec struct {
	IssuerSpec `json:",inline"`
}

// ClusterTokenIssuerSpec is an issuer for TokenRequests of every allowed namespace.
//
// +kubebuilder:validation:XValidation:rule="[has(self.authority), has(self.issuerURL), has(self.tokenURL), has(self.aws), has(self.google)].filter(x, x).size() == 1",message="set exactly one token issuer: authority (Microsoft Entra ID), issuerURL (OIDC discovery), tokenURL (OAuth2 token endpoint), aws (AWS STS) or google (Google workload identity federation)"
// +kubebuilder:validation:XValidation:rule="has(self.aws) || has(self.google) || has(self.clientID)",message="clientID is required unless aws or google is set"
// +kubebuilder:validation:XValidation:rule="!(has(self.aws) || has(self.google)) || has(self.credential.serviceAccount)",message="aws and google take a serviceAccount credential: the operator exchanges a token of that ServiceAccount"
// +kubebuilder:validation:XValidation:rule="!(has(self.aws) || has(self.google)) || !(has(self.clientID) || has(self.extraParameters) || has(self.tokenExchange))",message="with aws or google, leave out clientID, extraParameters and tokenExchange"
// +kubebuilder:validation:XValidation:rule="!has(self.azureRegion) || has(self.authority)",message="azureRegion applies only with authority (Microsoft Entra ID)"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.authority)",message="tokenExchange applies only with issuerURL or tokenURL"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.tokenExchange.subjectToken.tokenRequestRef)",message="an issuer fixes its subject: tokenExchange.subjectToken.tokenRequestRef applies only on a TokenRequest"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.tokenExchange.clientAuthentication) || self.tokenExchange.clientAuthentication != 'None'",message="an issuer authenticates its client with its credential: tokenExchange.clientAuthentication None applies only on a TokenRequest"
type ClusterTokenIssuerSpec struct {
	IssuerSpec `json:",inline"`

	// AllowedNamespaces limits which namespaces' TokenRequests may use the
	// issuer: a namespace listed in names or matched by selector. Absent:
	// every namespace.
	// +optional
	AllowedNamespaces *AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// AllowedNamespaces names namespaces, by name or by label selector.
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="set names, selector or both"
type AllowedNamespaces struct {
	// Names of allowed namespaces.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Names []string `json:"names,omitempty"`

	// Selector on namespace labels; matching namespaces are allowed.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// IssuerStatus is what the operator observed of an issuer.
type IssuerStatus struct {
	// Conditions: Ready is True when the configuration and the credential
	// are valid (parsed and consented to); no token is requested to check.
	// Stalled mirrors it for kstatus (Flux, kpt); Reconciling is False once checked.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// TokenRequests is how many TokenRequests name this issuer.
	// +optional
	TokenRequests int32 `json:"tokenRequests,omitempty"`

	// ObservedGeneration is the generation of the spec last checked.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// TokenIssuer is a token issuer, client and credential that the
// TokenRequests of its namespace use through issuerRef.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tokiss,categories=token-operator
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Requests",type=integer,description="TokenRequests naming this issuer",JSONPath=`.status.tokenRequests`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TokenIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the issuer's configuration.
	Spec TokenIssuerSpec `json:"spec"`

	// Status is what the operator observed. It reads observedGeneration 0
	// until the operator first checks the issuer, which kstatus takes as
	// "in progress".
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status IssuerStatus `json:"status,omitempty"`
}

// TokenIssuerList is a list of TokenIssuers.
//
// +kubebuilder:object:root=true
type TokenIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the TokenIssuers.
	Items []TokenIssuer `json:"items"`
}

// ClusterTokenIssuer is a token issuer, client and credential that
// TokenRequests of the allowed namespaces use through issuerRef.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ctokiss,categories=token-operator
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Requests",type=integer,description="TokenRequests naming this issuer",JSONPath=`.status.tokenRequests`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterTokenIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the issuer's configuration.
	Spec ClusterTokenIssuerSpec `json:"spec"`

	// Status is what the operator observed. It reads observedGeneration 0
	// until the operator first checks the issuer, which kstatus takes as
	// "in progress".
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status IssuerStatus `json:"status,omitempty"`
}

// ClusterTokenIssuerList is a list of ClusterTokenIssuers.
//
// +kubebuilder:object:root=true
type ClusterTokenIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the ClusterTokenIssuers.
	Items []ClusterTokenIssuer `json:"items"`
}

// IssuerReference names a TokenIssuer in the TokenRequest's namespace or a ClusterTokenIssuer.
type IssuerReference struct {
	// Kind is TokenIssuer (default) or ClusterTokenIssuer.
	// +optional
	// +kubebuilder:default=TokenIssuer
	// +kubebuilder:validation:Enum=TokenIssuer;ClusterTokenIssuer
	Kind string `json:"kind,omitempty"`

	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Issuer kinds an IssuerReference names.
const (
	KindTokenIssuer        = "TokenIssuer"
	KindClusterTokenIssuer = "ClusterTokenIssuer"
)
