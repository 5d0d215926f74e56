package tokensource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/token-operator/token-operator/internal/credential"
)

// TokenTypeAWS is the TokenType of temporary AWS credentials.
const TokenTypeAWS = "aws-credentials"

// AWSRole asks AWS STS AssumeRoleWithWebIdentity for temporary credentials.
// The web identity token is Request.Credential, an *credential.Assertion
// (a ServiceAccount token minted for the call).
type AWSRole struct {
	RoleARN     string
	SessionName string
	// DurationSeconds is 900 to 43200; 0 leaves STS's default (3600).
	DurationSeconds int32
	// Region selects https://sts.<region>.amazonaws.com (.com.cn for cn-*);
	// empty is the global endpoint https://sts.amazonaws.com.
	Region string
	// Endpoint, when set, is used instead of the one Region implies.
	Endpoint string
}

// AWSCredentials are temporary AWS credentials; the expiry is the Token's.
type AWSCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

func (c *AWSCredentials) size() int {
	if c == nil {
		return 0
	}
	return len(c.AccessKeyID) + len(c.SecretAccessKey) + len(c.SessionToken)
}

// URL is the STS endpoint the role is assumed at.
func (a *AWSRole) URL() string {
	switch {
	case a.Endpoint != "":
		return a.Endpoint
	case a.Region == "":
		return "https://sts.amazonaws.com"
	case strings.HasPrefix(a.Region, "cn-"):
		return "https://sts." + a.Region + ".amazonaws.com.cn"
	}
	return "https://sts." + a.Region + ".amazonaws.com"
}

// signingRegion: the global endpoint is us-east-1's. Unsigned calls need a
// region all the same, for the SDK's endpoint rules.
func (a *AWSRole) signingRegion() string {
	if a.Region == "" {
		return "us-east-1"
	}
	return a.Region
}

// awsGrant is AssumeRoleWithWebIdentity through the AWS SDK for Go v2's
// STS client, anonymous (the call is unsigned: the token is the proof) and
// on the engine's HTTP client.
type awsGrant struct{}

func (awsGrant) endpoints(r Request) []endpoint {
	return []endpoint{{"aws.endpoint", r.AWS.URL()}}
}

func (awsGrant) keyParts(r Request) []string {
	a := r.AWS
	return []string{"aws", a.RoleARN, a.SessionName, strconv.Itoa(int(a.DurationSeconds)), a.URL()}
}

// STS's own constraints on the parameters, and the API's patterns.
var (
	awsRoleARN     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
	awsSessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	awsRegion      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

func (g awsGrant) validate(r Request) *ConfigError {
	a := r.AWS
	return firstProblem(
		r.refuseForAWS,
		func() *ConfigError { return r.checkEndpoints(g) },
		r.checkWebIdentity,
		func() *ConfigError {
			switch {
			case len(a.RoleARN) > 2048 || !awsRoleARN.MatchString(a.RoleARN):
				return &ConfigError{Field: "aws.roleARN", Message: "must be an IAM role ARN, arn:aws:iam::<account>:role/<name>"}
			case !awsSessionName.MatchString(a.SessionName):
				return &ConfigError{Field: "aws.roleSessionName", Message: "must be 2 to 64 of letters, digits and +=,.@_-"}
			case a.DurationSeconds != 0 && (a.DurationSeconds < 900 || a.DurationSeconds > 43200):
				return &ConfigError{Field: "aws.durationSeconds", Message: "must be 900 to 43200"}
			case a.Region != "" && (len(a.Region) > 64 || !awsRegion.MatchString(a.Region)):
				return &ConfigError{Field: "aws.region", Message: "must be an AWS region such as eu-west-1"}
			}
			return nil
		},
	)
}

// refuseForAWS: what the OAuth2 grants read means nothing to STS.
func (r Request) refuseForAWS() *ConfigError {
	switch {
	case r.Authority != "" || r.IssuerURL != "" || r.TokenURL != "":
		return &ConfigError{Field: "aws", Message: "leave out authority, issuerURL and tokenURL: the token service is AWS STS"}
	case r.ClientID != "" || len(r.ExtraParameters) > 0 || r.Exchange != nil || r.AzureRegion != "":
		return &ConfigError{Field: "aws", Message: "leave out clientID, extraParameters, tokenExchange and azureRegion"}
	case len(r.Scopes) > 0:
		return &ConfigError{Field: "scopes", Message: "aws takes no scopes: the role's policies decide what the credentials may do"}
	}
	return nil
}

// checkWebIdentity: the web identity token is a ServiceAccount's.
func (r Request) checkWebIdentity() *ConfigError {
	if a, ok := r.Credential.(*credential.Assertion); !ok || a == nil || a.Provide == nil {
		return &ConfigError{Field: "credential", Message: "aws takes a serviceAccount credential, whose token is the web identity token"}
	}
	return nil
}

func (awsGrant) fetch(ctx context.Context, c *call) (Token, error) {
	a := c.req.AWS
	webIdentity, err := c.req.Credential.(*credential.Assertion).Provide(ctx)
	if err == nil && webIdentity == "" {
		err = errors.New("the web identity token source returned nothing")
	}
	if err != nil {
		c.st.mu.Lock()
		c.st.assertionEr = err
		c.st.mu.Unlock()
		return Token{}, err
	}
	c.st.addSecret(webIdentity)
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(a.RoleARN), RoleSessionName: aws.String(a.SessionName), WebIdentityToken: aws.String(webIdentity),
	}
	if a.DurationSeconds != 0 {
		in.DurationSeconds = aws.Int32(a.DurationSeconds)
	}
	out, err := c.e.stsClient(a).AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return Token{}, err
	}
	now := c.e.clock.Now()
	cr := out.Credentials
	if cr == nil || aws.ToString(cr.AccessKeyId) == "" || aws.ToString(cr.SecretAccessKey) == "" || aws.ToString(cr.SessionToken) == "" ||
		cr.Expiration == nil || !cr.Expiration.After(now) {
		if cr != nil {
			c.st.addSecret(aws.ToString(cr.SecretAccessKey))
			c.st.addSecret(aws.ToString(cr.SessionToken))
		}
		return Token{}, &Error{StatusCode: http.StatusOK, Code: "malformed_response", Description: "the AssumeRoleWithWebIdentity answer has no complete credentials or no future Expiration"}
	}
	creds := &AWSCredentials{AccessKeyID: *cr.AccessKeyId, SecretAccessKey: *cr.SecretAccessKey, SessionToken: *cr.SessionToken}
	c.st.addSecret(creds.SecretAccessKey)
	c.st.addSecret(creds.SessionToken)
	return Token{TokenType: TokenTypeAWS, AWS: creds, IssuedAt: now, ExpiresAt: a.cap(now, *cr.Expiration)}, nil
}

// cap keeps an Expiration within the duration asked for: STS never grants
// more, so a later one is a clock ahead of ours or a service that is not
// STS, and trusting it would put the refresh after the real expiry.
func (a *AWSRole) cap(now, expiration time.Time) time.Time {
	d := time.Duration(a.DurationSeconds) * time.Second
	if d == 0 {
		d = time.Hour // STS's default
	}
	return minTime(expiration, now.Add(d))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stsClient is the SDK's STS client on the engine's HTTP client, so the
// guard, the host policy and the answer caps apply. It makes one attempt:
// the SDK's retryer would repeat throttled and IDPCommunicationError calls
// (three attempts) inside one Fetch, out of sight of the operator's
// backoff, Retry-After handling and per-namespace fairness.
func (e *Engine) stsClient(a *AWSRole) *sts.Client {
	return sts.New(sts.Options{
		Region:       a.signingRegion(),
		BaseEndpoint: aws.String(a.URL()),
		HTTPClient:   e.client,
		Credentials:  aws.AnonymousCredentials{},
		Retryer:      aws.NopRetryer{},
	})
}

// terminalSTS are STS error codes no retry fixes: the token, the role's
// trust policy or the request is refused. ExpiredTokenException is among
// them: every call sends a freshly minted token, so an expired one means
// clocks disagree, which a person must fix.
var terminalSTS = map[string]bool{
	"InvalidIdentityToken": true, "AccessDenied": true, "ExpiredTokenException": true, "RegionDisabledException": true,
	"ValidationError": true, "MalformedPolicyDocument": true, "PackedPolicyTooLarge": true, "IDPRejectedClaim": true,
	"InvalidParameterValue": true, "MissingParameter": true, "InvalidAction": true, "UnrecognizedClientException": true,
}

// retryableSTS are STS error codes of a passing condition: the identity
// provider's keys could not be fetched, or STS is throttling or failing.
var retryableSTS = map[string]bool{
	"IDPCommunicationError": true, "Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"ServiceUnavailable": true, "InternalFailure": true, "InternalError": true,
}

func (awsGrant) classify(e *Engine, err error, secrets []string) error {
	var api smithy.APIError
	var resp *awshttp.ResponseError
	status := 0
	if errors.As(err, &resp) {
		status = resp.HTTPStatusCode()
	}
	if errors.As(err, &api) {
		code := api.ErrorCode()
		te := &Error{StatusCode: status, Code: errorCode(code, secrets), Description: describe(api.ErrorMessage(), nil, secrets)}
		if resp != nil {
			te.CorrelationID = requestID(secrets, resp.ServiceRequestID())
		}
		switch {
		case terminalSTS[code]:
		case retryableSTS[code]:
			te.Retryable = true
		default:
			te.Retryable = status == 0 || retryableStatus(status)
		}
		return te
	}
	if ne, ok := e.networkError(err, secrets); ok {
		return ne
	}
	if status != 0 && status != http.StatusOK {
		return &Error{Retryable: retryableStatus(status), StatusCode: status, Code: "malformed_response", Description: fmt.Sprintf("answer is not an STS error document (HTTP %d)", status)}
	}
	return &Error{Retryable: true, StatusCode: http.StatusOK, Code: "malformed_response", Description: "the AssumeRoleWithWebIdentity answer could not be read"}
}

func (awsGrant) keepsTokens() bool { return false }
