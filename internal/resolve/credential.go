package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Defaults applied by the controller, never written back into the spec.
const (
	defaultClientSecretKey = "clientSecret"
	defaultCertificateKey  = corev1.TLSCertKey
	defaultPrivateKeyKey   = corev1.TLSPrivateKeyKey
	defaultFederationAud   = "api://AzureADTokenExchange"
	// serviceAccountTokenSeconds is the lifetime of exchanged service account
	// tokens: the shortest the API server issues.
	serviceAccountTokenSeconds = 600
)

// credentialSource names the object that holds a credential.
type credentialSource struct {
	kind, name string // kind is "Secret" or "ServiceAccount"
}

func credentialSourceOf(c *v1.Credential) credentialSource {
	switch {
	case c == nil:
	case c.ClientSecret != nil:
		return credentialSource{"Secret", c.ClientSecret.Name}
	case c.Certificate != nil:
		return credentialSource{"Secret", c.Certificate.SecretName}
	case c.ServiceAccount != nil:
		return credentialSource{"ServiceAccount", c.ServiceAccount.Name}
	}
	return credentialSource{}
}

// CredentialKey names the object that holds a credential, "Secret/<name>"
// or "ServiceAccount/<name>"; "" for none.
func CredentialKey(c *v1.Credential) string {
	s := credentialSourceOf(c)
	if s.kind == "" {
		return ""
	}
	return s.kind + "/" + s.name
}

// buildRequest reads the credential and returns the token request for scopes,
// or a *Refusal. Consent is checked here, before any cache lookup.
// The second result identifies the credential's source and version, never
// its material; the third, for a TokenRequest using an issuer, the same
// without the credential's version, so that rotating an issuer's
// credential reaches its TokenRequests at their next refresh, not all at once.
func (r *Resolver) buildRequest(ctx context.Context, from Source, scopes []string) (req tokensource.Request, version, identity string, err error) {
	cred, allowed, version, err := r.loadCredential(ctx, from)
	if err != nil {
		return tokensource.Request{}, "", "", from.wrap(err)
	}
	s := from.spec
	req = tokensource.Request{
		Authority: s.Authority, IssuerURL: s.IssuerURL, TokenURL: s.TokenURL, AzureRegion: s.AzureRegion,
		ClientID: s.ClientID, Scopes: scopes, ExtraParameters: s.ExtraParameters,
		Credential: cred, AllowedHosts: allowed, ScopesLater: from.scopesLater,
	}
	identity = version
	if from.issuer != "" {
		identity = from.issuer + "|" + credentialIdentity(from)
	}
	if err := req.CheckConfiguredHost(); err != nil {
		return req, version, identity, from.wrap(specError(consentError(from, allowed, err)))
	}
	if err := req.Validate(); err != nil {
		return req, version, identity, from.wrap(specError(err))
	}
	if err := r.Policy.Validate(req); err != nil {
		return req, version, identity, from.wrap(specError(consentError(from, allowed, err)))
	}
	return req, version, identity, nil
}

func (r *Resolver) loadCredential(ctx context.Context, from Source) (cred credential.Credential, allowed []string, version string, err error) {
	c, ns := from.credential, from.credentialNamespace
	var holder metav1.Object
	switch {
	case c == nil:
		return nil, nil, "", &Refusal{Reason: v1.ReasonInvalidSpec, Message: "spec.credential names no credential"}
	case c.ClientSecret != nil:
		cred, allowed, holder, err = r.loadClientSecret(ctx, from, c.ClientSecret)
	case c.Certificate != nil:
		cred, allowed, holder, err = r.loadCertificate(ctx, from, c.Certificate)
	case c.ServiceAccount != nil:
		if r.NoServiceAccountCredentials {
			return nil, nil, "", serviceAccountsDisabled(c.ServiceAccount.Name, ns)
		}
		if err := r.checkServiceAccountReservation(ctx, from, c.ServiceAccount.Name); err != nil {
			return nil, nil, "", err
		}
		cred, allowed, err = r.loadServiceAccount(ctx, ns, c.ServiceAccount)
		if a, ok := cred.(*credential.Assertion); ok {
			version = "ServiceAccount/" + a.ID // a fresh token per call: the account's identity is the version
		}
		return cred, allowed, version, err
	default:
		return nil, nil, "", &Refusal{Reason: v1.ReasonInvalidSpec, Message: "spec.credential names no credential"}
	}
	if holder != nil {
		version = credentialVersion(holder, *c)
	}
	return cred, allowed, version, err
}

// credentialIdentity names where a credential is read from and how, without its version.
func credentialIdentity(from Source) string {
	how, _ := json.Marshal(from.credential)
	return from.credentialNamespace + "/" + string(how)
}

// credentialVersion names the Secret holding a credential, its version and
// how it is read, so that a rotation changes it while nothing in it is
// derived from the credential itself.
func credentialVersion(holder metav1.Object, ref v1.Credential) string {
	how, _ := json.Marshal(ref)
	return strings.Join([]string{"Secret", holder.GetNamespace(), holder.GetName(), string(holder.GetUID()), holder.GetResourceVersion(), string(how)}, "/")
}

func (r *Resolver) readSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.Direct.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("Secret %q not found in namespace %q", name, namespace)}
	}
	if apierrors.IsForbidden(err) {
		return nil, Forbidden(fmt.Sprintf("reading Secret %q (secrets get)", name), namespace)
	}
	return s, err
}

func secretValue(s *corev1.Secret, key string) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok || len(v) == 0 {
		return nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("Secret %q has no data key %q", s.Name, key)}
	}
	return v, nil
}

func (r *Resolver) loadClientSecret(ctx context.Context, from Source, ref *v1.ClientSecretCredential) (credential.Credential, []string, metav1.Object, error) {
	return r.secretCredential(ctx, from, ref.Name, ref, func(s *corev1.Secret) (credential.Credential, error) {
		v, err := secretValue(s, orDefault(ref.Key, defaultClientSecretKey))
		if err != nil {
			return nil, err
		}
		return &credential.ClientSecret{Secret: strings.TrimRight(string(v), "\r\n"), AuthMethod: credential.ClientAuthMethod(ref.AuthMethod)}, nil
	})
}

func (r *Resolver) loadCertificate(ctx context.Context, from Source, ref *v1.CertificateCredential) (credential.Credential, []string, metav1.Object, error) {
	return r.secretCredential(ctx, from, ref.SecretName, ref, func(s *corev1.Secret) (credential.Credential, error) {
		cert, err := parseCertificateSecret(s, ref)
		if err != nil {
			return nil, err
		}
		cert.SendX5C = ref.SendX5C
		cert.Algorithm = ref.SigningAlgorithm
		cert.KeyID = ref.KeyID
		return cert, nil
	})
}

func parseCertificateSecret(s *corev1.Secret, ref *v1.CertificateCredential) (*credential.Certificate, error) {
	var cert *credential.Certificate
	var err error
	if ref.PKCS12Key != "" {
		bundle, verr := secretValue(s, ref.PKCS12Key)
		if verr != nil {
			return nil, verr
		}
		password := ""
		if ref.PasswordKey != "" {
			p, perr := secretValue(s, ref.PasswordKey)
			if perr != nil {
				return nil, perr
			}
			password = strings.TrimRight(string(p), "\r\n")
		}
		cert, err = credential.ParsePKCS12(bundle, password)
	} else {
		certPEM, cerr := secretValue(s, orDefault(ref.CertificateKey, defaultCertificateKey))
		if cerr != nil {
			return nil, cerr
		}
		keyPEM, kerr := secretValue(s, orDefault(ref.PrivateKeyKey, defaultPrivateKeyKey))
		if kerr != nil {
			return nil, kerr
		}
		cert, err = credential.ParseCertificate(certPEM, keyPEM)
	}
	if err != nil {
		return nil, &Refusal{Reason: v1.ReasonInvalidCredential, Message: fmt.Sprintf("Secret %q: %v", s.Name, err)}
	}
	return cert, nil
}

// loadServiceAccount exchanges a token of the ServiceAccount. The
// ServiceAccount gives consent the way a Secret does, with the
// allowed-issuers annotation, because its token proves the workload's identity.
func (r *Resolver) loadServiceAccount(ctx context.Context, ns string, ref *v1.ServiceAccountCredential) (credential.Credential, []string, error) {
	sa, err := r.serviceAccountMeta(ctx, ns, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("ServiceAccount %q not found in namespace %q", ref.Name, ns)}
	}
	if apierrors.IsForbidden(err) {
		return nil, nil, Forbidden(fmt.Sprintf("reading ServiceAccount %q (serviceaccounts get)", ref.Name), ns)
	}
	if err != nil {
		return nil, nil, err
	}
	audience := orDefault(ref.Audience, defaultFederationAud)
	if why := r.Audiences.refusal(ctx, audience); why != "" {
		return nil, nil, audienceError(ref, why)
	}
	provide := func(ctx context.Context) (string, error) {
		expiry := int64(serviceAccountTokenSeconds)
		treq := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &expiry}}
		account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.Namespace, Name: sa.Name}}
		if err := r.Minter.SubResource("token").Create(ctx, account, treq); err != nil {
			if apierrors.IsForbidden(err) {
				return "", Forbidden(fmt.Sprintf("a token for ServiceAccount %q (serviceaccounts/token create)", ref.Name), sa.Namespace)
			}
			return "", fmt.Errorf("creating a token for ServiceAccount %q: %w", ref.Name, err)
		}
		return treq.Status.Token, nil
	}
	id := strings.Join([]string{ns, ref.Name, string(sa.UID), audience}, "/")
	return &credential.Assertion{ID: id, Provide: provide}, allowedHosts(sa.Annotations), nil
}

// serviceAccountMeta reads a ServiceAccount's metadata from the watch
// cache, and directly when the cache has not seen it yet.
func (r *Resolver) serviceAccountMeta(ctx context.Context, ns, name string) (*metav1.PartialObjectMetadata, error) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	m := metadataOf("ServiceAccount")
	if err := r.Cached.Get(ctx, key, m); err == nil {
		return m, nil
	}
	sa := &corev1.ServiceAccount{}
	if err := r.Direct.Get(ctx, key, sa); err != nil {
		return nil, err
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: sa.ObjectMeta}, nil
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
