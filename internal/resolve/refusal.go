package resolve

import (
	"errors"
	"fmt"
	"strings"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Refusal says why a TokenRequest gets no token request: a credential or
// issuer that cannot be used, found before any call to a token service.
// Reason is a condition reason, Message the status text.
type Refusal struct {
	Reason  string
	Message string
	// direct: a refusal of this use of the credential rather than a fault
	// of the issuer, so an issuer's wrap leaves it as it is.
	direct bool
}

func (e *Refusal) Error() string { return e.Message }

// Terminal tells the token engine that a Refusal met while getting
// an assertion is a refusal retrying will not fix, to pass on as it is.
func (e *Refusal) Terminal() bool { return true }

// serviceAccountsDisabled refuses a ServiceAccount credential when the
// operator may not mint service account tokens; direct, since it is the
// operator's setting, not a fault of an issuer.
func serviceAccountsDisabled(name, namespace string) error {
	return &Refusal{Reason: v1.ReasonServiceAccountCredentialsDisabled, direct: true, Message: fmt.Sprintf(
		"the credential is ServiceAccount %q in namespace %q, but this operator runs with --enable-service-account-credentials=false and mints no service account tokens; "+
			"use a client secret or certificate credential, or ask the cluster administrator", name, namespace)}
}

// Forbidden explains a 403 from the API server: the operator's RBAC
// lacks a right, which a person must grant. The API server's text is left
// out; it names nothing the message does not.
func Forbidden(what, namespace string) error {
	return &Refusal{Reason: v1.ReasonPermissionDenied, direct: true, Message: fmt.Sprintf(
		"the API server refused the operator %s in namespace %q (403 Forbidden): the operator's RBAC does not grant it there; "+
			"ask the cluster administrator (a scoped install grants it only in the watched namespaces, and not at all when the feature is turned off)", what, namespace)}
}

// specError turns a request the token engine refuses before any call into a Refusal.
func specError(err error) error {
	var cfg *tokensource.ConfigError
	if errors.As(err, &cfg) {
		reason := v1.ReasonInvalidSpec
		if strings.HasPrefix(cfg.Field, "credential") {
			reason = v1.ReasonInvalidCredential
		}
		return &Refusal{Reason: reason, Message: cfg.Error()}
	}
	return err
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
