package resolve

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// ConsentHosts is the host list a credential's allowed-issuers annotation
// grants, read as the operator reads it; tokensource.Request.AllowedHosts
// takes it. The docs tests check the documented rule against it.
func ConsentHosts(annotations map[string]string) []string { return allowedHosts(annotations) }

// Explain puts a token call's error in terms the TokenRequest's owner can
// act on: a refused host says how to consent, an issuer's fault says the
// issuer is not ready. req is the request that failed.
func (from Source) Explain(err error, req tokensource.Request) error {
	if req.Exchange != nil {
		return from.wrap(exchangeConsentError(from, req, err))
	}
	return from.wrap(consentError(from, req.AllowedHosts, err))
}

// allowedHosts parses the consent annotation; no annotation allows nothing.
func allowedHosts(annotations map[string]string) []string {
	hosts := []string{}
	for _, h := range strings.Split(annotations[v1.AnnotationAllowedIssuers], ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, strings.ToLower(h))
		}
	}
	return hosts
}

// consentError explains a refused host and, for a host that is
// syntactically valid, how the credential's owner may allow it.
func consentError(from Source, allowed []string, err error) error {
	var refused *tokensource.HostNotAllowedError
	if !errors.As(err, &refused) {
		return err
	}
	src := credentialSourceOf(from.credential)
	if refused.ByOperator {
		return &Refusal{Reason: v1.ReasonCredentialNotAllowed, Message: fmt.Sprintf(
			"the operator may not send credentials to %s: it is not in the operator's --allowed-issuer-hosts; ask the cluster administrator", hostForMessage(refused.Host))}
	}
	if !validHostPort(refused.Host) {
		return &Refusal{Reason: v1.ReasonCredentialNotAllowed, Message: fmt.Sprintf(
			"%s %q does not allow sending its credential to the issuer, whose host is not a valid host name", src.kind, src.name)}
	}
	value := strings.Join(append(append([]string{}, allowed...), refused.Host), ",")
	overwrite := ""
	if len(allowed) > 0 {
		overwrite = " --overwrite"
	}
	return &Refusal{Reason: v1.ReasonCredentialNotAllowed, Message: fmt.Sprintf(
		"%s %q does not allow sending its credential to %q; if you trust %q with this credential: kubectl annotate %s %s -n %s%s %s",
		src.kind, src.name, refused.Host, refused.Host, strings.ToLower(src.kind), shellQuote(src.name), shellQuote(from.credentialNamespace), overwrite,
		shellQuote(v1.AnnotationAllowedIssuers+"="+value))}
}

// hostForMessage quotes a valid host and hides one that is not, so that
// server- or tenant-chosen text never reaches a message unchecked.
func hostForMessage(host string) string {
	if validHostPort(host) {
		return strconv.Quote(host)
	}
	return "a host that is not a valid host name"
}

// validHostPort accepts a DNS name, an IPv4 address or a bracketed IPv6
// address, with an optional numeric port.
func validHostPort(hostport string) bool {
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") {
		return false // a bracketed address needs a port to split
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	if net.ParseIP(host) != nil {
		return true
	}
	return len(validation.IsDNS1123Subdomain(strings.ToLower(host))) == 0
}

// shellQuote leaves plain words alone and single-quotes anything else.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/:=,[]") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
