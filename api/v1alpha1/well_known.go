package v1alpha1

// Annotations and labels that form part of the API contract.
const (
	// AnnotationRefreshRequestedAt on a TokenRequest forces a refresh when its
	// value changes (any string; a timestamp is customary).
	AnnotationRefreshRequestedAt = "tokens.token-operator.io/refresh-requested-at"

	// AnnotationAllowedIssuers on a credential Secret lists, comma-separated,
	// the token-endpoint hosts ("host" or "host:port") the credential may be sent to.
	AnnotationAllowedIssuers = "tokens.token-operator.io/allowed-issuers"

	// AnnotationAllowAdoption set to "true" on an existing Secret lets the
	// operator take it over as a TokenRequest's output Secret.
	AnnotationAllowAdoption = "tokens.token-operator.io/allow-adoption"

	// Annotations the operator writes on its output Secrets; the operator
	// decides from them after a restart whether the token is still good.
	AnnotationExpiresAt = "tokens.token-operator.io/expires-at"
	AnnotationRefreshAt = "tokens.token-operator.io/refresh-at"
	AnnotationIssuedAt  = "tokens.token-operator.io/issued-at"
	AnnotationInputHash = "tokens.token-operator.io/input-hash"

	// AnnotationRestartedAt is set on the pod template of rollout restart
	// targets when a new token is written.
	AnnotationRestartedAt = "tokens.token-operator.io/restarted-at"

	// LabelManagedBy marks Secrets the operator manages; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "token-operator"

	// LabelTokenRequest on an output Secret names its TokenRequest.
	LabelTokenRequest = "tokens.token-operator.io/token-request"
)

// Default data keys of the output Secret.
const (
	KeyAccessToken = "access_token"
	KeyTokenType   = "token_type"
	KeyExpiresAt   = "expires_at"
)

// Condition types.
const (
	// ConditionReady is True while the Secret holds an unexpired token that
	// matches the spec.
	ConditionReady = "Ready"
	// ConditionIssuing is True while a refresh has failed and is being retried.
	ConditionIssuing = "Issuing"
)

// Condition reasons.
const (
	ReasonIssued                  = "Issued"
	ReasonRefreshed               = "Refreshed"
	ReasonExpired                 = "Expired"
	ReasonSecretConflict          = "SecretConflict"
	ReasonCredentialNotFound      = "CredentialNotFound"
	ReasonInvalidCredential       = "InvalidCredential"
	ReasonCredentialNotAllowed    = "CredentialNotAllowed"
	ReasonInvalidSpec             = "InvalidSpec"
	ReasonInvalidTemplate         = "InvalidTemplate" // secretTemplate refused by the allow-list, or past a rendering limit
	ReasonTokenServiceRejected    = "TokenServiceRejected"
	ReasonTokenServiceUnavailable = "TokenServiceUnavailable"
	ReasonRefreshFailed           = "RefreshFailed"
	ReasonRecovered               = "Recovered"
	ReasonRolloutRestartFailed    = "RolloutRestartFailed"
	// ReasonTokenCallsBusy: the namespace's token calls have all been under
	// way for a while (see --max-token-calls-per-namespace); retried shortly.
	ReasonTokenCallsBusy = "TokenCallsBusy"
)
