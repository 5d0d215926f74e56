package awssts

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// STS's parameter constraints for AssumeRoleWithWebIdentity.
var (
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
	roleARNPattern     = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/((?:[\x21-\x7e]+/)?)([\w+=,.@-]{1,64})$`)
	tokenAlgs          = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}
)

const (
	minDuration = 900
	maxDuration = 43200
	// clockSkew is the leeway given to exp and nbf.
	clockSkew = 5 * time.Minute
)

func parseRoleARN(arn string) (account, name string, ok bool) {
	m := roleARNPattern.FindStringSubmatch(arn)
	if m == nil || len(arn) > 2048 {
		return "", "", false
	}
	return m[2], m[4], true
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// queryParams merges the URL query and, for a form POST, the body.
func queryParams(r *http.Request, body []byte) (url.Values, error) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	return params, nil
}

// request is a validated AssumeRoleWithWebIdentity request.
type request struct {
	roleARN, sessionName, token string
	duration                    int
}

// validate applies STS's documented parameter constraints, answering
// ValidationError (MalformedPolicyDocument for a policy that is not JSON)
// as STS does.
func validate(p url.Values) (request, *Error) {
	req := request{roleARN: p.Get("RoleArn"), sessionName: p.Get("RoleSessionName"), token: p.Get("WebIdentityToken"), duration: 3600}
	for _, required := range []struct{ field, value string }{
		{"roleArn", req.roleARN}, {"roleSessionName", req.sessionName}, {"webIdentityToken", req.token},
	} {
		if !p.Has(strings.ToUpper(required.field[:1]) + required.field[1:]) {
			return req, validationError("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", required.field)
		}
	}
	if len(req.roleARN) < 20 || len(req.roleARN) > 2048 {
		return req, validationError("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048", req.roleARN)
	}
	if _, _, ok := parseRoleARN(req.roleARN); !ok {
		return req, validationError("Request ARN is invalid")
	}
	if n := len(req.sessionName); n < 2 || n > 64 {
		return req, validationError("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64", req.sessionName)
	}
	if !sessionNamePattern.MatchString(req.sessionName) {
		return req, validationError(`1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`, req.sessionName)
	}
	if n := len(req.token); n < 4 || n > 20000 {
		return req, validationError("1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000")
	}
	if p.Get("ProviderId") != "" {
		// STS documents ProviderId for OAuth 2.0 access tokens only.
		return req, sender(http.StatusBadRequest, "InvalidParameterValue", "ProviderId is only for OAuth 2.0 access tokens, not for OpenID Connect ID tokens.")
	}
	if e := validateDuration(p, &req); e != nil {
		return req, e
	}
	return req, validatePolicy(p)
}

func validateDuration(p url.Values, req *request) *Error {
	if !p.Has("DurationSeconds") {
		return nil
	}
	raw := p.Get("DurationSeconds")
	d, err := strconv.Atoi(raw)
	if err != nil {
		return sender(http.StatusBadRequest, "InvalidParameterValue", "Value (%s) for parameter DurationSeconds is invalid. It must be an integer.", raw)
	}
	if d < minDuration {
		return validationError("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to %d", d, minDuration)
	}
	if d > maxDuration {
		return validationError("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to %d", d, maxDuration)
	}
	req.duration = d
	return nil
}

// validatePolicy checks the optional session policies minimally: an inline
// policy must be JSON of at most 2048 characters, and at most 10 managed
// policy ARNs may be named.
func validatePolicy(p url.Values) *Error {
	if p.Has("Policy") {
		policy := p.Get("Policy")
		if len(policy) < 1 || len(policy) > 2048 {
			return validationError("1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length between 1 and 2048")
		}
		var doc map[string]any
		if json.Unmarshal([]byte(policy), &doc) != nil {
			return sender(http.StatusBadRequest, "MalformedPolicyDocument", "The policy is not in the valid JSON format.")
		}
	}
	arns := 0
	for k, v := range p {
		if strings.HasPrefix(k, "PolicyArns.member.") && strings.HasSuffix(k, ".arn") {
			arns++
			if !strings.HasPrefix(v[0], "arn:") || !strings.Contains(v[0], ":policy/") {
				return validationError("Invalid ARN %s", v[0])
			}
		}
	}
	if arns > 10 {
		return validationError("1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	return nil
}

func (s *Server) assumeRoleWithWebIdentity(w http.ResponseWriter, ctx context.Context, requestID string, p url.Values, regionDisabled bool) *Error {
	req, e := validate(p)
	if e != nil {
		return e
	}
	account, roleName, _ := parseRoleARN(req.roleARN)
	if regionDisabled {
		return RegionDisabled(account, s.Region)
	}
	if f := s.nextFault(); f != nil {
		return f
	}
	claims, provider, e := s.verifyToken(ctx, req.token)
	if e != nil {
		return e
	}
	s.mu.Lock()
	role, known := s.roles[req.roleARN]
	roleID := s.roleIDs[req.roleARN]
	s.mu.Unlock()
	if !known || role.Issuer != provider.Issuer {
		return accessDenied()
	}
	if !containsAny(claims.Audience, role.Audiences) {
		return invalidIdentityToken("Incorrect token audience")
	}
	if !matchAny(role.Subjects, claims.Subject) {
		return accessDenied()
	}
	if time.Duration(req.duration)*time.Second > role.MaxSessionDuration {
		return validationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	ses := s.issue(account, roleName, roleID, req)
	writeAssumed(w, requestID, ses, claims, provider.Issuer, role.Audiences)
	return nil
}

// verifyToken checks the web identity token as STS does: a JWT from a
// registered provider, signed by one of the keys its discovery serves,
// within exp and nbf.
func (s *Server) verifyToken(ctx context.Context, token string) (jwt.Claims, Provider, *Error) {
	var c jwt.Claims
	tok, err := jwt.ParseSigned(token, tokenAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return c, Provider{}, invalidIdentityToken("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil || c.Issuer == "" {
		return c, Provider{}, invalidIdentityToken("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	s.mu.Lock()
	provider, known := s.providers[c.Issuer]
	s.mu.Unlock()
	if !known {
		return c, Provider{}, invalidIdentityToken("No OpenIDConnect provider found in your account for %s", c.Issuer)
	}
	keys, err := provider.Keys(ctx)
	if err != nil {
		return c, provider, idpCommunicationError()
	}
	if !verified(tok, tok.Headers[0].KeyID, keys, &c) {
		return c, provider, invalidIdentityToken("Couldn't verify the token signature with the keys of %s", c.Issuer)
	}
	return c, provider, checkTimes(c, s.now())
}

// verified tries the key the header names, or every key when it names none.
func verified(tok *jwt.JSONWebToken, kid string, keys jose.JSONWebKeySet, out *jwt.Claims) bool {
	candidates := keys.Keys
	if kid != "" {
		candidates = keys.Key(kid)
	}
	for _, k := range candidates {
		if err := tok.Claims(k.Key, out); err == nil {
			return true
		}
	}
	return false
}

// checkTimes requires exp and honours nbf and iat, allowing clockSkew.
func checkTimes(c jwt.Claims, now time.Time) *Error {
	if c.Expiry == nil {
		return invalidIdentityToken("The ID Token has no expiration claim (exp).")
	}
	if now.Add(-clockSkew).After(c.Expiry.Time()) {
		return expiredToken("Token expired: current date/time %s must be before the expiration date/time %s", now.UTC().Format(time.RFC3339), c.Expiry.Time().UTC().Format(time.RFC3339))
	}
	for _, t := range []*jwt.NumericDate{c.NotBefore, c.IssuedAt} {
		if t != nil && now.Add(clockSkew).Before(t.Time()) {
			return invalidIdentityToken("The ID Token is not valid yet: current date/time %s is before %s", now.UTC().Format(time.RFC3339), t.Time().UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// matchAny reports whether value matches one of IAM's StringLike patterns.
func matchAny(patterns []string, value string) bool {
	for _, p := range patterns {
		if stringLike(p, value) {
			return true
		}
	}
	return false
}

// stringLike is IAM's StringLike: * is any run of characters, ? any one.
func stringLike(pattern, value string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(value)
}

func containsAny(have jwt.Audience, want []string) bool {
	for _, w := range want {
		if have.Contains(w) {
			return true
		}
	}
	return false
}

// issue mints and remembers credentials for an assumed role session.
func (s *Server) issue(account, roleName, roleID string, req request) session {
	secret := make([]byte, 30)
	token := make([]byte, 300)
	_, _ = rand.Read(secret)
	_, _ = rand.Read(token)
	now := s.now()
	ses := session{
		creds: Credentials{
			AccessKeyID:     "ASIA" + randomKeyChars(16),
			SecretAccessKey: base64.StdEncoding.EncodeToString(secret),
			SessionToken:    base64.StdEncoding.EncodeToString(token),
			Expiration:      now.Add(time.Duration(req.duration) * time.Second).UTC().Truncate(time.Second),
		},
		account:       account,
		assumedARN:    "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + req.sessionName,
		assumedRoleID: roleID + ":" + req.sessionName,
	}
	s.mu.Lock()
	s.sessions[ses.creds.AccessKeyID] = ses
	s.issued = append(s.issued, ses.creds.AccessKeyID)
	s.mu.Unlock()
	return ses
}

type assumeResponse struct {
	XMLName  xml.Name     `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns    string       `xml:"xmlns,attr"`
	Result   assumeResult `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata metadata     `xml:"ResponseMetadata"`
}

type assumeResult struct {
	SubjectFromWebIdentityToken string         `xml:"SubjectFromWebIdentityToken"`
	Audience                    string         `xml:"Audience"`
	AssumedRoleUser             assumedUserXML `xml:"AssumedRoleUser"`
	Credentials                 credentialsXML `xml:"Credentials"`
	Provider                    string         `xml:"Provider"`
}

type assumedUserXML struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type credentialsXML struct {
	SessionToken    string `xml:"SessionToken"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	Expiration      string `xml:"Expiration"`
	AccessKeyID     string `xml:"AccessKeyId"`
}

type metadata struct {
	RequestID string `xml:"RequestId"`
}

// writeAssumed answers with the token's first accepted audience, and as
// Provider the ARN of the IAM OIDC provider (its URL without https://).
func writeAssumed(w http.ResponseWriter, requestID string, ses session, c jwt.Claims, issuer string, audiences []string) {
	aud := ""
	for _, a := range c.Audience {
		if containsAny(jwt.Audience{a}, audiences) {
			aud = a
			break
		}
	}
	providerPath := path.Clean(strings.TrimPrefix(issuer, "https://"))
	writeXML(w, requestID, http.StatusOK, assumeResponse{
		Xmlns: namespace,
		Result: assumeResult{
			SubjectFromWebIdentityToken: c.Subject,
			Audience:                    aud,
			AssumedRoleUser:             assumedUserXML{Arn: ses.assumedARN, AssumedRoleID: ses.assumedRoleID},
			Credentials: credentialsXML{
				SessionToken: ses.creds.SessionToken, SecretAccessKey: ses.creds.SecretAccessKey,
				Expiration: ses.creds.Expiration.Format(time.RFC3339), AccessKeyID: ses.creds.AccessKeyID,
			},
			Provider: "arn:aws:iam::" + ses.account + ":oidc-provider/" + providerPath,
		},
		Metadata: metadata{RequestID: requestID},
	})
}
