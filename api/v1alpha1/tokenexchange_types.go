package v1alpha1

// TokenExchange gets the token by RFC 8693 token exchange: the operator
// sends a subject token to the token endpoint (tokenURL or issuerURL's),
// authenticating the client with its credential as for client credentials.
type TokenExchange struct {
	// SubjectToken is the token exchanged.
	SubjectToken ExchangeSubject `json:"subjectToken"`

	// SubjectTokenType is the subject token's RFC 8693 type. Default:
	// urn:ietf:params:oauth:token-type:jwt for a serviceAccount subject (a
	// service account token is a JWT),
	// urn:ietf:params:oauth:token-type:access_token for a tokenRequestRef.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-zA-Z][a-zA-Z0-9+.-]*:[\x21\x23-\x5B\x5D-\x7E]+$')`,message="subjectTokenType must be a token type URI such as urn:ietf:params:oauth:token-type:jwt"
	SubjectTokenType string `json:"subjectTokenType,omitempty"`

	// RequestedTokenType is the RFC 8693 type of the token asked for.
	// Default: urn:ietf:params:oauth:token-type:access_token.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-zA-Z][a-zA-Z0-9+.-]*:[\x21\x23-\x5B\x5D-\x7E]+$')`,message="requestedTokenType must be a token type URI such as urn:ietf:params:oauth:token-type:access_token"
	RequestedTokenType string `json:"requestedTokenType,omitempty"`

	// Audience is the logical name of the service the token is for (RFC
	// 8693 audience).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Audience string `json:"audience,omitempty"`

	// ActorToken, when set, is sent as the RFC 8693 actor token: the party
	// acting on behalf of the subject. Its ServiceAccount consents to the
	// host as the subject's must.
	// +optional
	ActorToken *ExchangeActor `json:"actorToken,omitempty"`

	// ActorTokenType is the actor token's RFC 8693 type. Default:
	// urn:ietf:params:oauth:token-type:jwt.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-zA-Z][a-zA-Z0-9+.-]*:[\x21\x23-\x5B\x5D-\x7E]+$')`,message="actorTokenType must be a token type URI such as urn:ietf:params:oauth:token-type:jwt"
	ActorTokenType string `json:"actorTokenType,omitempty"`

	// ClientAuthentication is how the client authenticates to the token
	// endpoint: Credential (the default: spec.credential, as for client
	// credentials) or None, for a server that lets this exchange be made
	// without client authentication: no credential is sent, and clientID,
	// when set, goes in the form as client_id. None is for a TokenRequest
	// only; the subject's consent then guards the host.
	// +optional
	// +kubebuilder:validation:Enum=Credential;None
	ClientAuthentication ExchangeClientAuthentication `json:"clientAuthentication,omitempty"`

	// Resource lists absolute URIs of the services the token is for (RFC
	// 8693 resource, sent once each).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(r, isURL(r) && url(r).getScheme() != '')",message="each resource must be an absolute URI"
	Resource []string `json:"resource,omitempty"`

	// AllowedAudiences, on an issuer, are the audiences its TokenRequests
	// may choose in spec.exchange.audience instead of audience, as
	// patterns in which * matches any run of characters (orders-*,
	// api://*). A TokenRequest naming any other audience is refused without
	// a token call. Absent: none but the issuer's own audience. Only on a
	// TokenIssuer or ClusterTokenIssuer.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	AllowedAudiences []string `json:"allowedAudiences,omitempty"`

	// AllowedResources, on an issuer, are the resources its TokenRequests
	// may choose in spec.exchange.resource instead of resource, as
	// patterns in which * matches any run of characters
	// (https://orders.example.com/*). A pattern with * writes out its
	// scheme and host and has * only after them, where it cannot reach
	// another host.
	// Absent: none but the issuer's own resources. Only on a TokenIssuer or
	// ClusterTokenIssuer.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`self.all(p, !p.contains('*') || p.matches(r'^[a-zA-Z][a-zA-Z0-9+.-]*://[^*/?#@]+/.*$'))`,message="an allowedResources pattern with * writes out its scheme and host, * only after them (https://orders.example.com/*), so that it cannot match another host"
	AllowedResources []string `json:"allowedResources,omitempty"`
}

// ExchangeTarget is what a TokenRequest chooses of its issuer's token
// exchange: the audience and the resources, each among those the issuer
// allows.
//
// +kubebuilder:validation:XValidation:rule="has(self.audience) || has(self.resource)",message="set audience, resource or both"
type ExchangeTarget struct {
	// Audience replaces the issuer's tokenExchange.audience (RFC 8693
	// audience). It is the issuer's own audience or matches one of its
	// tokenExchange.allowedAudiences.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Audience string `json:"audience,omitempty"`

	// Resource replaces the issuer's tokenExchange.resource (RFC 8693
	// resource, absolute URIs). Each is one of the issuer's own resources or
	// matches one of its tokenExchange.allowedResources.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(r, isURL(r) && url(r).getScheme() != '')",message="each resource must be an absolute URI"
	Resource []string `json:"resource,omitempty"`
}

// ExchangeActor is where the actor token comes from.
type ExchangeActor struct {
	// ServiceAccount is a ServiceAccount whose token the operator mints, under
	// the same rules as a serviceAccount subject (consent, audience).
	ServiceAccount *ServiceAccountCredential `json:"serviceAccount"`
}

// ExchangeClientAuthentication is how a token exchange's client authenticates.
type ExchangeClientAuthentication string

// Client authentication of a token exchange.
const (
	ExchangeClientAuthCredential ExchangeClientAuthentication = "Credential"
	ExchangeClientAuthNone       ExchangeClientAuthentication = "None"
)

// ExchangeSubject is where the subject token comes from. Exactly one is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.serviceAccount), has(self.tokenRequestRef)].filter(x, x).size() == 1",message="set exactly one subject token: serviceAccount or tokenRequestRef"
type ExchangeSubject struct {
	// ServiceAccount is a ServiceAccount whose token the operator mints as
	// for a serviceAccount credential: the ServiceAccount must consent to
	// the token endpoint's host with the tokens.token-operator.io/allowed-issuers
	// annotation, and the audience rules apply. It is in the TokenRequest's
	// namespace, or the issuer's credential namespace for an issuer.
	// +optional
	ServiceAccount *ServiceAccountCredential `json:"serviceAccount,omitempty"`

	// TokenRequestRef names another TokenRequest in the same namespace
	// whose token (the access_token of its output Secret) is sent as the
	// subject token; the exchanged token never outlives it and is
	// exchanged again when it is refreshed. Only on a TokenRequest, not on
	// an issuer.
	// +optional
	TokenRequestRef *LocalTokenRequestReference `json:"tokenRequestRef,omitempty"`
}

// LocalTokenRequestReference names a TokenRequest in the same namespace.
type LocalTokenRequestReference struct {
	// Name of the TokenRequest.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}
