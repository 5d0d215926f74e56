package awssts

import (
	"encoding/xml"
	"fmt"
	"net/http"
)

// Error is an STS error answer: the HTTP status, the fault side (Sender for
// the caller's mistakes, Receiver for the service's) and the code the AWS
// SDKs turn into a typed error.
type Error struct {
	Status  int
	Type    string
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func sender(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Type: "Sender", Code: code, Message: fmt.Sprintf(format, args...)}
}

// The errors STS documents for AssumeRoleWithWebIdentity, and the common
// ones of every Query API call, with the statuses STS answers them with.
func invalidIdentityToken(format string, args ...any) *Error {
	return sender(http.StatusBadRequest, "InvalidIdentityToken", format, args...)
}

func expiredToken(format string, args ...any) *Error {
	return sender(http.StatusBadRequest, "ExpiredTokenException", format, args...)
}

func accessDenied() *Error {
	return sender(http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
}

func idpCommunicationError() *Error {
	return sender(http.StatusBadRequest, "IDPCommunicationError", "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements")
}

func validationError(format string, args ...any) *Error {
	return sender(http.StatusBadRequest, "ValidationError", format, args...)
}

// RegionDisabled is the answer of a region STS is not activated in.
func RegionDisabled(account, region string) *Error {
	return sender(http.StatusForbidden, "RegionDisabledException",
		"STS is not activated in this region for account:%s. Your account administrator can activate STS in this region using the IAM Console.", account)
}

// IDPRejectedClaim is the answer when the identity provider rejects the token.
func IDPRejectedClaim() *Error {
	return sender(http.StatusForbidden, "IDPRejectedClaim", "The identity provider rejected the claim in the web identity token.")
}

// IDPCommunicationError is the answer when the issuer's keys cannot be fetched.
func IDPCommunicationError() *Error { return idpCommunicationError() }

// ServiceUnavailable is STS's answer when it cannot serve for a while.
func ServiceUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: "Receiver", Code: "ServiceUnavailable", Message: "Service is unable to handle request."}
}

// Throttling is STS's rate limit answer.
func Throttling() *Error {
	return sender(http.StatusBadRequest, "Throttling", "Rate exceeded")
}

const namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     errorXML `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type errorXML struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, requestID string, e *Error) {
	writeXML(w, requestID, e.Status, errorResponse{Xmlns: namespace, RequestID: requestID,
		Error: errorXML{Type: e.Type, Code: e.Code, Message: e.Message}})
}

func writeXML(w http.ResponseWriter, requestID string, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}
