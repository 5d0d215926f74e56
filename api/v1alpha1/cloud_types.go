package v1alpha1

// AWSTarget gets temporary AWS credentials from AWS STS
// AssumeRoleWithWebIdentity, the web identity token being a token of the
// credential's ServiceAccount (audience default: sts.amazonaws.com).
type AWSTarget struct {
	// RoleARN is the IAM role assumed, whose trust policy names the
	// cluster's service account issuer as a federated principal.
	// +kubebuilder:validation:MinLength=20
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`
	RoleARN string `json:"roleARN"`

	// RoleSessionName names the session in CloudTrail and in the assumed
	// role's ARN. Default: the TokenRequest's namespace and name.
	// +optional
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[\w+=,.@-]+$`
	RoleSessionName string `json:"roleSessionName,omitempty"`

	// DurationSeconds is how long the credentials last, 900 to 43200 and at
	// most the role's maximum session duration. Default: 3600.
	// +optional
	// +kubebuilder:validation:Minimum=900
	// +kubebuilder:validation:Maximum=43200
	DurationSeconds *int32 `json:"durationSeconds,omitempty"`

	// Region selects the regional STS endpoint https://sts.<region>.amazonaws.com
	// (China regions: .amazonaws.com.cn). Default: the global endpoint
	// https://sts.amazonaws.com.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	Region string `json:"region,omitempty"`

	// Endpoint is an STS endpoint URL used instead of the one region
	// implies: a FIPS or VPC endpoint, or an STS-compatible service.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="endpoint must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	Endpoint string `json:"endpoint,omitempty"`
}

// GoogleTarget gets a Google Cloud access token by workload identity
// federation, as external_account credentials do: the credential's
// ServiceAccount token is exchanged at Google's Security Token Service and,
// when serviceAccountEmail is set, the result is used to impersonate that
// Google service account. The token's scopes are spec.scopes (default
// https://www.googleapis.com/auth/cloud-platform).
type GoogleTarget struct {
	// Audience is the workload identity provider's full resource name:
	// //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^//iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+/providers/[a-z0-9-]+$`
	Audience string `json:"audience"`

	// ServiceAccountEmail is a Google service account impersonated with the
	// federated token (IAM Credentials generateAccessToken). Absent: the
	// federated token itself is written.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+$`
	ServiceAccountEmail string `json:"serviceAccountEmail,omitempty"`

	// TokenLifetimeSeconds is the lifetime asked of generateAccessToken, 600
	// to 43200 (above 3600 only where the organization allows it). Only with
	// serviceAccountEmail. Default: 3600.
	// +optional
	// +kubebuilder:validation:Minimum=600
	// +kubebuilder:validation:Maximum=43200
	TokenLifetimeSeconds *int32 `json:"tokenLifetimeSeconds,omitempty"`

	// STSURL is the token exchange endpoint. Default: https://sts.googleapis.com/v1/token.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="stsURL must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	STSURL string `json:"stsURL,omitempty"`

	// IAMCredentialsURL is the IAM Credentials API's base URL, for
	// impersonation. Default: https://iamcredentials.googleapis.com.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="iamCredentialsURL must be an https URL (plain http only for localhost, 127.0.0.1 or [::1])"
	IAMCredentialsURL string `json:"iamCredentialsURL,omitempty"`
}
