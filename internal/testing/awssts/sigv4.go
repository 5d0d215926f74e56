package awssts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Caller is who signed a request: an assumed role session.
type Caller struct {
	Account     string
	ARN         string // arn:aws:sts::<account>:assumed-role/<role>/<session>
	UserID      string // <role ID>:<session>
	AccessKeyID string
}

// signature is a parsed SigV4 Authorization header.
type signature struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
}

// maxSkew is how far X-Amz-Date may be from the server's time.
const maxSkew = 15 * time.Minute

// Authenticate checks a SigV4-signed request for service the way AWS does:
// credentials this server issued, scoped to its region and service, still
// valid, with their session token, and a signature recomputed with the
// issued secret key (by the AWS SDK's own signer). It leaves r's body
// readable, so any handler (an S3-like endpoint, say) can use it.
func (s *Server) Authenticate(r *http.Request, service string) (Caller, error) {
	body, err := readBody(r)
	if err != nil {
		return Caller{}, err
	}
	c, e := s.authenticate(r, body, service)
	if e != nil {
		return Caller{}, e
	}
	return c, nil
}

func (s *Server) authenticate(r *http.Request, body []byte, service string) (Caller, *Error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return Caller{}, sender(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	sig, e := parseAuthorization(auth)
	if e != nil {
		return Caller{}, e
	}
	s.mu.Lock()
	ses, known := s.sessions[sig.accessKeyID]
	s.mu.Unlock()
	if !known || subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Amz-Security-Token")), []byte(ses.creds.SessionToken)) != 1 {
		return Caller{}, sender(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	now := s.now()
	if !now.Before(ses.creds.Expiration) {
		return Caller{}, sender(http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired")
	}
	if e := s.checkScope(sig, service, r.Header.Get("X-Amz-Date"), now); e != nil {
		return Caller{}, e
	}
	if !signatureMatches(r, body, auth, sig, ses.creds, service) {
		return Caller{}, sender(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return Caller{Account: ses.account, ARN: ses.assumedARN, UserID: ses.assumedRoleID, AccessKeyID: sig.accessKeyID}, nil
}

// parseAuthorization reads "AWS4-HMAC-SHA256 Credential=<key>/<date>/
// <region>/<service>/aws4_request, SignedHeaders=<h1;h2>, Signature=<hex>".
func parseAuthorization(auth string) (signature, *Error) {
	incomplete := sender(http.StatusBadRequest, "IncompleteSignature", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=%s", strings.SplitN(auth, " ", 2)[0])
	alg, rest, ok := strings.Cut(auth, " ")
	if !ok || alg != "AWS4-HMAC-SHA256" {
		return signature{}, incomplete
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return signature{}, incomplete
	}
	return signature{accessKeyID: scope[0], date: scope[1], region: scope[2], service: scope[3],
		signedHeaders: strings.Split(fields["SignedHeaders"], ";")}, nil
}

func (s *Server) checkScope(sig signature, service, amzDate string, now time.Time) *Error {
	if sig.region != s.Region {
		return sender(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region. ")
	}
	if sig.service != service {
		return sender(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: '%s'. ", service)
	}
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, sig.date) {
		return sender(http.StatusBadRequest, "IncompleteSignature", "Date must be in ISO-8601 'basic format' and match the credential scope date.")
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return sender(http.StatusForbidden, "SignatureDoesNotMatch", "Signature expired: %s is now earlier than %s (%s - 15 min.)", amzDate,
			now.Add(-maxSkew).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"))
	}
	return nil
}

// signatureMatches re-signs a copy of r holding only the headers the
// client signed, with the issued secret, and compares the whole header.
func signatureMatches(r *http.Request, body []byte, auth string, sig signature, creds Credentials, service string) bool {
	u := *r.URL
	u.Scheme, u.Host = "https", r.Host
	c, err := http.NewRequestWithContext(context.Background(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return false
	}
	c.Host = r.Host
	c.ContentLength = 0
	for _, h := range sig.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			c.ContentLength = r.ContentLength
		default:
			c.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	t, _ := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
	}, c, hex.EncodeToString(sum[:]), service, sig.region, t)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Header.Get("Authorization")), []byte(auth)) == 1
}

type callerResponse struct {
	XMLName  xml.Name     `xml:"GetCallerIdentityResponse"`
	Xmlns    string       `xml:"xmlns,attr"`
	Result   callerResult `xml:"GetCallerIdentityResult"`
	Metadata metadata     `xml:"ResponseMetadata"`
}

type callerResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

func writeCallerIdentity(w http.ResponseWriter, requestID string, c Caller) {
	writeXML(w, requestID, http.StatusOK, callerResponse{Xmlns: namespace,
		Result: callerResult{Arn: c.ARN, UserID: c.UserID, Account: c.Account}, Metadata: metadata{RequestID: requestID}})
}
