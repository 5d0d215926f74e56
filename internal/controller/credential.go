package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

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

// credentialError is a credential that cannot be used; Reason is a condition reason.
type credentialError struct {
	Reason  string
	Message string
}

func (e *credentialError) Error() string { return e.Message }

// credentialSource names the object that holds a TokenRequest's credential.
type credentialSource struct {
	kind, name string // kind is "Secret" or "ServiceAccount"
}

func sourceOf(tr *v1.TokenRequest) credentialSource {
	c := tr.Spec.Credential
	switch {
	case c.ClientSecret != nil:
		return credentialSource{"Secret", c.ClientSecret.Name}
	case c.Certificate != nil:
		return credentialSource{"Secret", c.Certificate.SecretName}
	case c.ServiceAccount != nil:
		return credentialSource{"ServiceAccount", c.ServiceAccount.Name}
	}
	return credentialSource{}
}

// buildRequest reads the credential and returns the token request for tr,
// or a *credentialError. Consent is checked here, before any cache lookup.
func (r *TokenRequestReconciler) buildRequest(ctx context.Context, tr *v1.TokenRequest) (tokensource.Request, error) {
	cred, allowed, err := r.loadCredential(ctx, tr)
	if err != nil {
		return tokensource.Request{}, err
	}
	s := tr.Spec
	req := tokensource.Request{
		Authority: s.Authority, IssuerURL: s.IssuerURL, TokenURL: s.TokenURL, AzureRegion: s.AzureRegion,
		ClientID: s.ClientID, Scopes: s.Scopes, ExtraParameters: s.ExtraParameters,
		Credential: cred, AllowedHosts: allowed,
	}
	if err := req.CheckConfiguredHost(); err != nil {
		return req, specError(consentError(tr, allowed, err))
	}
	if err := req.Validate(); err != nil {
		return req, specError(err)
	}
	return req, nil
}

func (r *TokenRequestReconciler) loadCredential(ctx context.Context, tr *v1.TokenRequest) (credential.Credential, []string, error) {
	c := tr.Spec.Credential
	switch {
	case c.ClientSecret != nil:
		return r.loadClientSecret(ctx, tr.Namespace, c.ClientSecret)
	case c.Certificate != nil:
		return r.loadCertificate(ctx, tr.Namespace, c.Certificate)
	case c.ServiceAccount != nil:
		return r.loadServiceAccount(ctx, tr.Namespace, c.ServiceAccount)
	}
	return nil, nil, &credentialError{Reason: v1.ReasonInvalidSpec, Message: "spec.credential names no credential"}
}

func (r *TokenRequestReconciler) readSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, &credentialError{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("Secret %q not found in namespace %q", name, namespace)}
	}
	return s, err
}

func secretValue(s *corev1.Secret, key string) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok || len(v) == 0 {
		return nil, &credentialError{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("Secret %q has no data key %q", s.Name, key)}
	}
	return v, nil
}

func (r *TokenRequestReconciler) loadClientSecret(ctx context.Context, ns string, ref *v1.ClientSecretCredential) (credential.Credential, []string, error) {
	s, err := r.readSecret(ctx, ns, ref.Name)
	if err != nil {
		return nil, nil, err
	}
	v, err := secretValue(s, orDefault(ref.Key, defaultClientSecretKey))
	if err != nil {
		return nil, nil, err
	}
	method := credential.ClientAuthMethod(ref.AuthMethod)
	return &credential.ClientSecret{Secret: strings.TrimRight(string(v), "\r\n"), AuthMethod: method}, allowedHosts(s.Annotations), nil
}

func (r *TokenRequestReconciler) loadCertificate(ctx context.Context, ns string, ref *v1.CertificateCredential) (credential.Credential, []string, error) {
	s, err := r.readSecret(ctx, ns, ref.SecretName)
	if err != nil {
		return nil, nil, err
	}
	cert, err := parseCertificateSecret(s, ref)
	if err != nil {
		return nil, nil, err
	}
	cert.SendX5C = ref.SendX5C
	cert.Algorithm = ref.SigningAlgorithm
	return cert, allowedHosts(s.Annotations), nil
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
		return nil, &credentialError{Reason: v1.ReasonInvalidCredential, Message: fmt.Sprintf("Secret %q: %v", s.Name, err)}
	}
	return cert, nil
}

// loadServiceAccount exchanges a token of the ServiceAccount. The
// ServiceAccount gives consent the way a Secret does, with the
// allowed-issuers annotation, because its token proves the workload's identity.
func (r *TokenRequestReconciler) loadServiceAccount(ctx context.Context, ns string, ref *v1.ServiceAccountCredential) (credential.Credential, []string, error) {
	sa := &corev1.ServiceAccount{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, sa)
	if apierrors.IsNotFound(err) {
		return nil, nil, &credentialError{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("ServiceAccount %q not found in namespace %q", ref.Name, ns)}
	}
	if err != nil {
		return nil, nil, err
	}
	audience := orDefault(ref.Audience, defaultFederationAud)
	provide := func(ctx context.Context) (string, error) {
		expiry := int64(serviceAccountTokenSeconds)
		treq := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &expiry}}
		if err := r.Client.SubResource("token").Create(ctx, sa, treq); err != nil {
			return "", fmt.Errorf("creating a token for ServiceAccount %q: %w", ref.Name, err)
		}
		return treq.Status.Token, nil
	}
	id := strings.Join([]string{ns, ref.Name, string(sa.UID), audience}, "/")
	return &credential.Assertion{ID: id, Provide: provide}, allowedHosts(sa.Annotations), nil
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

// consentError explains a refused host and how to allow it.
func consentError(tr *v1.TokenRequest, allowed []string, err error) error {
	var refused *tokensource.HostNotAllowedError
	if !errors.As(err, &refused) {
		return err
	}
	src := sourceOf(tr)
	value := strings.Join(append(append([]string{}, allowed...), refused.Host), ",")
	overwrite := ""
	if len(allowed) > 0 {
		overwrite = " --overwrite"
	}
	return &credentialError{Reason: v1.ReasonCredentialNotAllowed, Message: fmt.Sprintf(
		"%s %q does not allow sending its credential to %q; to allow it: kubectl annotate %s %s -n %s%s %s=%s",
		src.kind, src.name, refused.Host, strings.ToLower(src.kind), src.name, tr.Namespace, overwrite, v1.AnnotationAllowedIssuers, value)}
}

// specError turns a request the token engine refuses before any call into a credentialError.
func specError(err error) error {
	var cfg *tokensource.ConfigError
	if errors.As(err, &cfg) {
		reason := v1.ReasonInvalidSpec
		if strings.HasPrefix(cfg.Field, "credential") {
			reason = v1.ReasonInvalidCredential
		}
		return &credentialError{Reason: reason, Message: cfg.Error()}
	}
	return err
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
