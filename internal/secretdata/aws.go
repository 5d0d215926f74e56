package secretdata

import (
	"encoding/json"
	"fmt"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// The keys of an AWS TokenRequest's Secret, besides expires_at: each a form
// AWS SDKs read without code.
const (
	// KeyAWSCredentials is a shared-credentials file for
	// AWS_SHARED_CREDENTIALS_FILE, with a [default] profile.
	KeyAWSCredentials = "credentials"
	// KeyAWSCredentialProcess is what a credential_process prints:
	// credential_process = cat /path/credential_process.json.
	KeyAWSCredentialProcess = "credential_process.json"
	// KeyAWSAccessKeyID, KeyAWSSecretAccessKey and KeyAWSSessionToken are
	// for envFrom; environment variables never follow a refresh.
	KeyAWSAccessKeyID     = "AWS_ACCESS_KEY_ID"
	KeyAWSSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	KeyAWSSessionToken    = "AWS_SESSION_TOKEN"
)

// AWSKeys are temporary AWS credentials.
type AWSKeys struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// credentialProcess is the credential_process output, version 1.
type credentialProcess struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// awsData is an AWS Secret's data; expires is RFC 3339 UTC.
func awsData(k AWSKeys, expires string) map[string][]byte {
	process, _ := json.Marshal(credentialProcess{Version: 1, AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey,
		SessionToken: k.SessionToken, Expiration: expires})
	shared := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n",
		k.AccessKeyID, k.SecretAccessKey, k.SessionToken)
	return map[string][]byte{
		KeyAWSCredentials:       []byte(shared),
		KeyAWSCredentialProcess: process,
		KeyAWSAccessKeyID:       []byte(k.AccessKeyID),
		KeyAWSSecretAccessKey:   []byte(k.SecretAccessKey),
		KeyAWSSessionToken:      []byte(k.SessionToken),
		v1.KeyExpiresAt:         []byte(expires),
	}
}

// ReadAWS reads back the credentials an AWS Secret holds; nil when one of
// the keys is missing.
func ReadAWS(data map[string][]byte) *AWSKeys {
	k := AWSKeys{string(data[KeyAWSAccessKeyID]), string(data[KeyAWSSecretAccessKey]), string(data[KeyAWSSessionToken])}
	if k.AccessKeyID == "" || k.SecretAccessKey == "" || k.SessionToken == "" {
		return nil
	}
	return &k
}

// MaxTokenDataBytes bounds the default data keys (names included) of a
// token of at most maxTokenBytes: AWS credentials are written three times
// (the file, the JSON, the envFrom keys) with some format text around them.
func MaxTokenDataBytes(maxTokenBytes int64) int {
	return 3*int(maxTokenBytes) + 1024
}
