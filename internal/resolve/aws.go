package resolve

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// defaultAWSAudience is the audience of the web identity token unless the
// serviceAccount credential names one: the one IAM OIDC providers list by
// default and EKS uses.
const defaultAWSAudience = "sts.amazonaws.com"

// awsAudience gives an AWS source's ServiceAccount credential its default
// audience, on a copy.
func awsAudience(from Source, ref *v1.ServiceAccountCredential) *v1.ServiceAccountCredential {
	if from.spec.AWS == nil || ref.Audience != "" {
		return ref
	}
	c := *ref
	c.Audience = defaultAWSAudience
	return &c
}

// awsRole is the STS request of an AWS source. The session name defaults to
// the TokenRequest's namespace and name, so CloudTrail shows whose
// credentials acted.
func awsRole(from Source) *tokensource.AWSRole {
	a := from.spec.AWS
	role := &tokensource.AWSRole{RoleARN: a.RoleARN, SessionName: a.RoleSessionName, Region: a.Region, Endpoint: a.Endpoint}
	if a.DurationSeconds != nil {
		role.DurationSeconds = *a.DurationSeconds
	}
	if role.SessionName == "" {
		role.SessionName = SessionName(from.requesterKey)
	}
	return role
}

// maxSessionName is STS's limit on RoleSessionName.
const maxSessionName = 64

// SessionName turns "namespace/name" into an STS session name: characters
// outside [\w+=,.@-] become '-', the slash '.', and a name too long keeps
// its start and a digest of the whole. Empty (an issuer checked on its own)
// is "token-operator".
func SessionName(requester string) string {
	if requester == "" {
		return "token-operator"
	}
	s := strings.Map(func(r rune) rune {
		switch {
		case r == '/':
			return '.'
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_+=,.@-", r):
			return r
		}
		return '-'
	}, requester)
	if len(s) <= maxSessionName {
		return s
	}
	sum := sha256.Sum256([]byte(requester))
	return s[:maxSessionName-13] + "-" + hex.EncodeToString(sum[:6])
}
