package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TokenRequestSpec says which token issuer to ask, as which client, for which
// scopes, and where to keep the token.
//
// +kubebuilder:validation:XValidation:rule="has(self.issuerRef) || [has(self.authority), has(self.issuerURL), has(self.tokenURL), has(self.aws), has(self.google)].filter(x, x).size() == 1",message="set issuerRef, or exactly one token issuer: authority (Microsoft Entra ID), issuerURL (OIDC discovery), tokenURL (OAuth2 token endpoint), aws (AWS STS) or google (Google workload identity federation)"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerRef) || !(has(self.authority) || has(self.issuerURL) || has(self.tokenURL) || has(self.azureRegion) || has(self.clientID) || has(self.credential) || has(self.extraParameters) || has(self.aws) || has(self.google))",message="with issuerRef, leave out authority, issuerURL, tokenURL, aws, google, azureRegion, clientID, credential and extraParameters: the issuer provides them"
// +kubebuilder:validation:XValidation:rule="has(self.issuerRef) || has(self.aws) || has(self.google) || (has(self.clientID) && has(self.credential)) || (has(self.tokenExchange) && has(self.tokenExchange.clientAuthentication) && self.tokenExchange.clientAuthentication == 'None')",message="clientID and credential are required unless issuerRef names an issuer (or tokenExchange.clientAuthentication is None)"
// +kubebuilder:validation:XValidation:rule="!(has(self.tokenExchange) && has(self.tokenExchange.clientAuthentication) && self.tokenExchange.clientAuthentication == 'None') || !has(self.credential)",message="with tokenExchange.clientAuthentication None, leave out credential"
// +kubebuilder:validation:XValidation:rule="!(has(self.aws) || has(self.google)) || (has(self.credential) && has(self.credential.serviceAccount))",message="aws and google take a serviceAccount credential: the operator exchanges a token of that ServiceAccount"
// +kubebuilder:validation:XValidation:rule="!(has(self.aws) || has(self.google)) || !(has(self.clientID) || has(self.extraParameters) || has(self.tokenExchange))",message="with aws or google, leave out clientID, extraParameters and tokenExchange"
// +kubebuilder:validation:XValidation:rule="!has(self.aws) || !has(self.scopes)",message="aws takes no scopes: the role's policies decide what the credentials may do"
// +kubebuilder:validation:XValidation:rule="!has(self.authority) || (has(self.scopes) && size(self.scopes) > 0)",message="scopes are required with authority: Microsoft Entra ID client credentials take one '<resource>/.default' scope, for example https://graph.microsoft.com/.default"
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set renewBefore or renewBeforePercentage, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.azureRegion) || has(self.authority)",message="azureRegion applies only with authority (Microsoft Entra ID)"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !has(self.authority)",message="tokenExchange applies only with issuerURL or tokenURL"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerRef) || !has(self.tokenExchange)",message="with issuerRef, leave out tokenExchange: the issuer provides it"
// +kubebuilder:validation:XValidation:rule="!has(self.exchange) || has(self.issuerRef)",message="exchange applies only with issuerRef: without an issuer, set tokenExchange.audience and tokenExchange.resource"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || !(has(self.tokenExchange.allowedAudiences) || has(self.tokenExchange.allowedResources))",message="tokenExchange.allowedAudiences and allowedResources apply only on an issuer: a TokenRequest sets tokenExchange.audience and resource itself"
type TokenRequestSpec struct {
	// IssuerRef names a TokenIssuer of this namespace or a ClusterTokenIssuer
	// that provides the issuer, client and credential. With issuerRef,
	// authority, issuerURL, tokenURL, azureRegion, clientID, credential and
	// extraParameters are left out.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// Authority is a Microsoft Entra ID authority, handled through MSAL Go:
	// https://login.microsoftonline.com/<tenant> or a sovereign cloud's.
	// Exactly one of authority, issuerURL and tokenURL is set.
	// Plain http is accepted only for localhost, 127.0.0.1 and [::1].
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="authority must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	Authority string `json:"authority,omitempty"`

	// IssuerURL is an OpenID Connect issuer. The token endpoint is read from
	// <issuerURL>/.well-known/openid-configuration.
	// Exactly one of authority, issuerURL and tokenURL is set.
	// Plain http is accepted only for localhost, 127.0.0.1 and [::1].
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="issuerURL must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	IssuerURL string `json:"issuerURL,omitempty"`

	// TokenURL is the token endpoint of an OAuth2 server.
	// Exactly one of authority, issuerURL and tokenURL is set.
	// Plain http is accepted only for localhost, 127.0.0.1 and [::1].
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="tokenURL must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	TokenURL string `json:"tokenURL,omitempty"`

	// AzureRegion asks Microsoft Entra ID for a regional token service (MSAL's
	// WithAzureRegion), for example westus2. Only with authority.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+$`
	AzureRegion string `json:"azureRegion,omitempty"`

	// ClientID is the application (client) ID registered with the token
	// issuer. Required unless issuerRef is set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	ClientID string `json:"clientID,omitempty"`

	// Scopes are requested with the token. Required with authority, where
	// client credentials take exactly one '<resource>/.default' scope. Each
	// is an RFC 6749 scope-token: printable ASCII without space, double
	// quote or backslash.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`self.all(s, s.matches(r'^[\x21\x23-\x5B\x5D-\x7E]+$'))`,message="each scope must be an RFC 6749 scope-token: printable ASCII without space, double quote or backslash"
	Scopes []string `json:"scopes,omitempty"`

	// ExtraParameters are extra form fields sent to a generic token endpoint,
	// such as audience for Auth0. They cannot replace the fields of the
	// client-credentials request itself.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'scope']))",message="extraParameters cannot set grant_type, client_id, client_secret, client_assertion, client_assertion_type or scope"
	ExtraParameters map[string]string `json:"extraParameters,omitempty"`

	// Credential is how the client proves its identity. It always refers to
	// objects in the TokenRequest's own namespace. Required unless issuerRef is set.
	// +optional
	Credential *Credential `json:"credential,omitempty"`

	// TokenExchange gets the token by RFC 8693 token exchange instead of
	// client credentials, the client authenticated with credential. Only
	// with issuerURL or tokenURL; not with issuerRef.
	// +optional
	TokenExchange *TokenExchange `json:"tokenExchange,omitempty"`

	// Exchange chooses the audience and resources of the token exchange of
	// the issuer issuerRef names, among those its tokenExchange allows
	// (allowedAudiences, allowedResources); left out, the issuer's own
	// apply. Only with issuerRef.
	// +optional
	Exchange *ExchangeTarget `json:"exchange,omitempty"`

	// AWS gets temporary AWS credentials from STS AssumeRoleWithWebIdentity
	// with a token of credential.serviceAccount, instead of an OAuth2 token.
	// +optional
	AWS *AWSTarget `json:"aws,omitempty"`

	// Google gets a Google Cloud access token by workload identity
	// federation with a token of credential.serviceAccount.
	// +optional
	Google *GoogleTarget `json:"google,omitempty"`

	// SecretName is the Secret the token is written to, in the TokenRequest's
	// namespace. Defaults to the TokenRequest's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secretName must be a valid Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	SecretName string `json:"secretName,omitempty"`

	// SecretTemplate shapes the output Secret: its type, extra labels and
	// annotations, and data keys rendered from Go templates.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// RenewBefore refreshes the token this long before it expires, for example 15m.
	// By default the token is refreshed when one third of its lifetime is left,
	// or earlier when the token service says so.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="renewBefore must be a positive duration such as 15m or 1h30m"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// RenewBeforePercentage refreshes the token when this percentage of its
	// lifetime is left (1 to 90). Default: 33, one third.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=90
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`

	// RolloutRestartTargets are workloads in the same namespace restarted
	// (like kubectl rollout restart) whenever a new token is written, for
	// applications that read the token only at start.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	RolloutRestartTargets []RolloutRestartTarget `json:"rolloutRestartTargets,omitempty"`

	// DeletionPolicy says what happens to the output Secret when the
	// TokenRequest is deleted: Delete (default, through the owner reference)
	// or Retain.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// Credential is how the client proves its identity; exactly one field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.clientSecret), has(self.certificate), has(self.serviceAccount)].filter(x, x).size() == 1",message="set exactly one credential: clientSecret, certificate or serviceAccount"
type Credential struct {
	// ClientSecret is a client secret held in a Secret of the TokenRequest's
	// namespace. The Secret must carry the tokens.token-operator.io/allowed-issuers
	// annotation naming the token hosts it may be sent to.
	// +optional
	ClientSecret *ClientSecretCredential `json:"clientSecret,omitempty"`

	// Certificate is a certificate and private key, held in a Secret of the
	// TokenRequest's namespace, used to sign client assertions (private_key_jwt).
	// The Secret must carry the tokens.token-operator.io/allowed-issuers annotation.
	// +optional
	Certificate *CertificateCredential `json:"certificate,omitempty"`

	// ServiceAccount is a Kubernetes service account of the TokenRequest's
	// namespace whose token is exchanged as a client assertion (workload
	// identity federation): no static secret at all.
	// +optional
	ServiceAccount *ServiceAccountCredential `json:"serviceAccount,omitempty"`
}

// ClientSecretCredential points at a client secret.
type ClientSecretCredential struct {
	// Name of the Secret that holds the client secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key of the client secret in the Secret's data. Default: clientSecret.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`

	// AuthMethod is how the secret travels to a generic OAuth2 server:
	// client_secret_basic (default, HTTP Basic) or client_secret_post (form
	// fields). Ignored with authority, where MSAL decides.
	// +optional
	AuthMethod ClientAuthMethod `json:"authMethod,omitempty"`
}

// ClientAuthMethod is an OAuth2 client authentication method for a client secret.
// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post
type ClientAuthMethod string

// Client authentication methods for a client secret.
const (
	ClientSecretBasic ClientAuthMethod = "client_secret_basic"
	ClientSecretPost  ClientAuthMethod = "client_secret_post"
)

// CertificateCredential points at a certificate and its private key.
// +kubebuilder:validation:XValidation:rule="!has(self.pkcs12Key) || (!has(self.certificateKey) && !has(self.privateKeyKey))",message="set pkcs12Key, or certificateKey and privateKeyKey, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.passwordKey) || has(self.pkcs12Key)",message="passwordKey applies only with pkcs12Key"
type CertificateCredential struct {
	// SecretName is the Secret holding the certificate and key, by default a
	// kubernetes.io/tls Secret with keys tls.crt and tls.key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`

	// CertificateKey is the data key of the PEM certificate chain. Default: tls.crt.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	CertificateKey string `json:"certificateKey,omitempty"`

	// PrivateKeyKey is the data key of the PEM private key (PKCS#1, PKCS#8 or
	// SEC1). Default: tls.key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PrivateKeyKey string `json:"privateKeyKey,omitempty"`

	// PKCS12Key is the data key of a PKCS#12 bundle holding certificate and
	// key, used instead of certificateKey and privateKeyKey.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PKCS12Key string `json:"pkcs12Key,omitempty"`

	// PasswordKey is the data key of the PKCS#12 bundle's password, if it has one.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PasswordKey string `json:"passwordKey,omitempty"`

	// SendX5C sends the certificate chain (x5c header) with each assertion,
	// for Microsoft Entra ID subject name and issuer authentication.
	// +optional
	SendX5C bool `json:"sendX5C,omitempty"`

	// KeyID is the kid header of the client assertions. Default: the
	// certificate's SHA-256 thumbprint, base64url-encoded (also sent as
	// x5t#S256). Set it for servers that look keys up by an id of their own,
	// such as the kid a server assigned when the key was registered.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!-~]+$`
	KeyID string `json:"keyID,omitempty"`

	// SigningAlgorithm signs assertions for a generic OAuth2 server: RS256
	// (default for RSA keys), PS256, or ES256 (P-256 keys). Microsoft Entra ID
	// accepts RSA keys only.
	// +optional
	// +kubebuilder:validation:Enum=RS256;PS256;ES256
	SigningAlgorithm string `json:"signingAlgorithm,omitempty"`
}

// ServiceAccountCredential names a Kubernetes service account whose token is
// used as a client assertion.
type ServiceAccountCredential struct {
	// Name of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Audience of the service account token. Default: api://AzureADTokenExchange,
	// what Microsoft Entra ID federated credentials expect.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Audience string `json:"audience,omitempty"`
}

// SecretTemplate shapes the output Secret.
type SecretTemplate struct {
	// Type of the Secret. Default: Opaque. Of the Kubernetes types only
	// kubernetes.io/basic-auth and kubernetes.io/dockerconfigjson are allowed;
	// custom types must be outside kubernetes.io and k8s.io.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!(self.startsWith('kubernetes.io/') || self.startsWith('bootstrap.kubernetes.io/')) || self in ['kubernetes.io/basic-auth', 'kubernetes.io/dockerconfigjson']",message="of the kubernetes.io Secret types only kubernetes.io/basic-auth and kubernetes.io/dockerconfigjson are allowed"
	Type corev1.SecretType `json:"type,omitempty"`

	// Labels added to the Secret. Keys under tokens.token-operator.io/ and
	// app.kubernetes.io/managed-by belong to the operator.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tokens.token-operator.io/') && k != 'app.kubernetes.io/managed-by')",message="labels under tokens.token-operator.io/ and app.kubernetes.io/managed-by are reserved for the operator"
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations added to the Secret. Keys under tokens.token-operator.io/
	// belong to the operator.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tokens.token-operator.io/'))",message="annotations under tokens.token-operator.io/ are reserved for the operator"
	Annotations map[string]string `json:"annotations,omitempty"`

	// Data keys rendered from Go templates (text/template) that add to or
	// replace the default keys access_token, token_type and expires_at. The
	// templates see .AccessToken, .TokenType, .ExpiresAt (RFC 3339), .Scopes
	// and .ClientID; for example "Bearer {{ .AccessToken }}". They may use
	// if, with, range over .Scopes (not nested), and the functions b64enc,
	// toJson, quote, rfc3339, unixEpoch, join (as in .Scopes | join " "),
	// upper, lower, trim, print, println, not, and, or. Each template is at
	// most 16 KiB, all together 64 KiB, and they render at most 64 KiB.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 16384)",message="each secretTemplate.data template is at most 16 KiB"
	Data map[string]string `json:"data,omitempty"`
}

// RolloutRestartTarget names a workload in the TokenRequest's namespace.
type RolloutRestartTarget struct {
	// Kind of the workload.
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
	Kind string `json:"kind"`

	// Name of the workload.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DeletionPolicy says what happens to the output Secret when its TokenRequest is deleted.
// +kubebuilder:validation:Enum=Delete;Retain
type DeletionPolicy string

// Deletion policies.
const (
	DeletionPolicyDelete DeletionPolicy = "Delete"
	DeletionPolicyRetain DeletionPolicy = "Retain"
)

// TokenRequestStatus is what the operator observed and did.
type TokenRequestStatus struct {
	// Conditions: Ready says whether the Secret holds an unexpired token for
	// the current spec; Reconciling is True while a first token or a retry
	// after a transient failure is on its way; Stalled is True when getting a
	// token failed in a way that needs a person (a refused client, a bad
	// template); Warning is True when the tokens live too briefly for mounted
	// Secrets to keep up. Reconciling and Stalled follow kstatus, which Flux
	// and kpt wait with.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// SecretName is the Secret the token was written to.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// TokenType is the token type the token service returned, usually Bearer.
	// +optional
	TokenType string `json:"tokenType,omitempty"`

	// Scopes as granted by the token service.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`

	// ExpiresAt is when the token in the Secret expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// RefreshAt is when the operator will refresh the token.
	// +optional
	RefreshAt *metav1.Time `json:"refreshAt,omitempty"`

	// LastRefreshTime is when the token in the Secret was obtained.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// FailedAttempts counts refresh attempts that failed since the last success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// LastFailureTime is when the last refresh attempt failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// LastFailureInputHash identifies the issuer, client, scopes, parameters
	// and credential of the last failed attempt: a failure is retried at once
	// when any of them changes, and after a backoff otherwise.
	// +optional
	LastFailureInputHash string `json:"lastFailureInputHash,omitempty"`

	// LastRefreshRequestedAt is the value of the
	// tokens.token-operator.io/refresh-requested-at annotation last acted on.
	// +optional
	LastRefreshRequestedAt string `json:"lastRefreshRequestedAt,omitempty"`

	// LastForcedRefreshTime is when a refresh requested with the
	// tokens.token-operator.io/refresh-requested-at annotation last called
	// the token service, whether the call succeeded or not.
	// +optional
	LastForcedRefreshTime *metav1.Time `json:"lastForcedRefreshTime,omitempty"`

	// NextForcedRefreshTime is when a refresh requested with the
	// tokens.token-operator.io/refresh-requested-at annotation is made; set
	// while one is pending because it came within the operator's
	// --min-refresh-interval of the last forced refresh. Later requests merge
	// into it.
	// +optional
	NextForcedRefreshTime *metav1.Time `json:"nextForcedRefreshTime,omitempty"`

	// LastFailureReason is the reason of the failure that keeps the Secret
	// from being refreshed, empty while all is well.
	// +optional
	LastFailureReason string `json:"lastFailureReason,omitempty"`

	// NextRetryTime is when a failed attempt is tried again, chosen once with
	// its jitter so that TokenRequests failing together do not retry together.
	// +optional
	NextRetryTime *metav1.Time `json:"nextRetryTime,omitempty"`

	// PendingRestarts are the rollout restart targets not yet restarted for
	// the token in the Secret; they are retried until done.
	// +optional
	// +listType=atomic
	PendingRestarts []RolloutRestartTarget `json:"pendingRestarts,omitempty"`

	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// TokenRequest asks for an OAuth2 access token (client-credentials flow) and
// keeps it, refreshed before expiry, in a Secret of the same namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tokreq,categories=token-operator
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,description="When the token in the Secret expires (UTC)",JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Refresh",type=string,priority=1,description="When the operator refreshes the token (UTC)",JSONPath=`.status.refreshAt`
// +kubebuilder:printcolumn:name="Failing",type=string,priority=1,description="Why the last attempt to get a token failed",JSONPath=`.status.lastFailureReason`
// +kubebuilder:printcolumn:name="Next Retry",type=string,priority=1,description="When a failed attempt is tried again (UTC)",JSONPath=`.status.nextRetryTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TokenRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired token.
	Spec TokenRequestSpec `json:"spec"`

	// Status is the observed state of the token. Until the operator first
	// writes it, it reads observedGeneration 0, which kstatus (Flux, kpt)
	// takes as "in progress".
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status TokenRequestStatus `json:"status,omitempty"`
}

// TokenRequestList is a list of TokenRequests.
//
// +kubebuilder:object:root=true
type TokenRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the TokenRequests.
	Items []TokenRequest `json:"items"`
}
