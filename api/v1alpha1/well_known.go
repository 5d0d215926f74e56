package v1alpha1

// Annotations and labels that form part of the API contract.
const (
	// AnnotationRefreshRequestedAt on a TokenRequest forces a refresh when its
	// value changes (any string; a timestamp is customary).
	AnnotationRefreshRequestedAt = "tokens.token-operator.io/refresh-requested-at"

	// AnnotationAllowedIssuers on a credential Secret lists, comma-separated,
	// the token-endpoint hosts ("host" or "host:port") the credential may be sent to.
	AnnotationAllowedIssuers = "tokens.token-operator.io/allowed-issuers"

	// AnnotationReservedFor on a credential Secret (or a ServiceAccount used
	// as a federation credential) lists, comma-separated, the issuers that
	// alone may use it: "TokenIssuer/<name>" (in the Secret's namespace) or
	// "ClusterTokenIssuer/<name>". An inline TokenRequest or any other issuer
	// naming it is refused with CredentialNotAllowed before any token call.
	AnnotationReservedFor = "tokens.token-operator.io/reserved-for"

	// AnnotationAllowAdoption set to "true" on an existing Secret lets the
	// operator take it over as a TokenRequest's output Secret.
	AnnotationAllowAdoption = "tokens.token-operator.io/allow-adoption"

	// Annotations the operator writes on its output Secrets; the operator
	// decides from them after a restart whether the token is still good.
	AnnotationExpiresAt = "tokens.token-operator.io/expires-at"
	AnnotationRefreshAt = "tokens.token-operator.io/refresh-at"
	AnnotationIssuedAt  = "tokens.token-operator.io/issued-at"
	AnnotationInputHash = "tokens.token-operator.io/input-hash"

	// AnnotationTokenRequestName on an output Secret holds its TokenRequest's
	// full name; the token-request label holds a shortened form for names
	// longer than a label value may be.
	AnnotationTokenRequestName = "tokens.token-operator.io/token-request-name"

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
	// ConditionReconciling (kstatus) is True while a first token, or a retry
	// after a transient failure, is on its way.
	ConditionReconciling = "Reconciling"
	// ConditionStalled (kstatus) is True when getting a token failed in a way
	// that needs a person: a refused client or scope, a bad spec or template,
	// a credential without consent, a Secret in the way.
	ConditionStalled = "Stalled"
	// ConditionWarning is True when the tokens live shorter than the
	// operator's --min-remaining-lifetime, so that pods may read a token
	// that expires before kubelet updates the mounted Secret.
	ConditionWarning = "Warning"
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
	// ReasonTokenTooLarge: the token service answered a token larger than
	// the operator's --max-token-bytes; it was not stored. Retried with the
	// backoff of other terminal failures.
	ReasonTokenTooLarge = "TokenTooLarge"
	// ReasonUpToDate: nothing to do (Reconciling and Stalled False).
	ReasonUpToDate = "UpToDate"
	// ReasonShortLifetime: tokens live shorter than --min-remaining-lifetime (Warning).
	ReasonShortLifetime = "ShortLifetime"
	// ReasonRolloutRestarted: the rollout restart targets were restarted for a new token.
	ReasonRolloutRestarted = "RolloutRestarted"
	// ReasonIssuerNotFound: issuerRef names no TokenIssuer in the namespace, or no ClusterTokenIssuer.
	ReasonIssuerNotFound = "IssuerNotFound"
	// ReasonIssuerNotAllowed: the ClusterTokenIssuer does not allow the TokenRequest's namespace.
	ReasonIssuerNotAllowed = "IssuerNotAllowed"
	// ReasonScopeNotAllowed: a requested scope matches none of the issuer's allowedScopes.
	ReasonScopeNotAllowed = "ScopeNotAllowed"
	// ReasonAudienceNotAllowed: a TokenRequest's spec.exchange names an
	// audience or resource its issuer's token exchange does not allow.
	ReasonAudienceNotAllowed = "AudienceNotAllowed"
	// ReasonIssuerNotReady: the issuer's configuration or credential cannot be used.
	ReasonIssuerNotReady = "IssuerNotReady"
	// ReasonIssuerChecked: an issuer's configuration and credential are valid (issuer Ready).
	ReasonIssuerChecked = "Checked"
	// ReasonServiceAccountCredentialsDisabled: the credential (the
	// TokenRequest's or its issuer's) is a ServiceAccount, and this
	// installation runs with --enable-service-account-credentials=false.
	ReasonServiceAccountCredentialsDisabled = "ServiceAccountCredentialsDisabled"
	// ReasonRolloutRestartsDisabled: spec.rolloutRestartTargets is set, and
	// this installation runs with --enable-rollout-restarts=false.
	ReasonRolloutRestartsDisabled = "RolloutRestartsDisabled"
	// ReasonPermissionDenied: the API server refused the operator a request
	// (403 Forbidden), such as creating a ServiceAccount token: its RBAC
	// does not grant it in that namespace.
	ReasonPermissionDenied = "PermissionDenied"
	// ReasonSubjectTokenNotReady: the TokenRequest a token exchange takes
	// its subject token from (tokenRequestRef) has no valid token yet.
	ReasonSubjectTokenNotReady = "SubjectTokenNotReady"
)
