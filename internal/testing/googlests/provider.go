package googlests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Provider is an OIDC workload identity pool provider.
type Provider struct {
	ProjectNumber string
	Pool          string
	Provider      string
	// Issuer is the provider's oidc.issuerUri; a subject token's iss must
	// equal it.
	Issuer string
	// AllowedAudiences are oidc.allowedAudiences; empty means the default,
	// the provider's resource name with an https: prefix (DefaultAudience).
	AllowedAudiences []string
	// Keys verify the issuer's tokens: StaticKeys for a JWKS uploaded to
	// the provider (oidc.jwksJson), DiscoveryKeys to fetch them like Google.
	Keys KeySource
	// SubjectCondition is a simple attribute condition on assertion.sub: a
	// path.Match pattern (e.g. "system:serviceaccount:team-a:*"); empty
	// accepts any subject.
	SubjectCondition string
	// Disabled providers refuse exchanges as deleted ones do.
	Disabled bool
}

// Name is the provider's resource name, projects/N/locations/global/….
func (p Provider) Name() string {
	return "projects/" + p.ProjectNumber + "/locations/global/workloadIdentityPools/" + p.Pool + "/providers/" + p.Provider
}

// Audience is the STS audience parameter that names the provider.
func (p Provider) Audience() string { return "//iam.googleapis.com/" + p.Name() }

// DefaultAudience is the subject token audience a provider allows when it
// lists none.
func (p Provider) DefaultAudience() string { return "https://iam.googleapis.com/" + p.Name() }

// PrincipalFor is the IAM principal of a federated subject (with Google's
// default mapping google.subject=assertion.sub).
func (p Provider) PrincipalFor(sub string) string {
	return "principal://iam.googleapis.com/projects/" + p.ProjectNumber + "/locations/global/workloadIdentityPools/" + p.Pool + "/subject/" + sub
}

// PoolMembers is the principalSet of every identity in the provider's pool.
func (p Provider) PoolMembers() string {
	return "principalSet://iam.googleapis.com/projects/" + p.ProjectNumber + "/locations/global/workloadIdentityPools/" + p.Pool + "/*"
}

func (p Provider) audiences() []string {
	if len(p.AllowedAudiences) > 0 {
		return p.AllowedAudiences
	}
	return []string{p.DefaultAudience()}
}

func (p Provider) conditionHolds(sub string) bool {
	if p.SubjectCondition == "" {
		return true
	}
	ok, err := path.Match(p.SubjectCondition, sub)
	return err == nil && ok
}

// AddProvider registers or replaces a workload identity pool provider.
func (s *Server) AddProvider(p Provider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers[p.Audience()] = p
}

// KeySource returns an issuer's JSON Web Key Set.
type KeySource func(ctx context.Context) (jose.JSONWebKeySet, error)

// StaticKeys serves a fixed key set.
func StaticKeys(set jose.JSONWebKeySet) KeySource {
	return func(context.Context) (jose.JSONWebKeySet, error) { return set, nil }
}

// errDiscoveryIssuer refuses a discovery document for another issuer.
var errDiscoveryIssuer = errors.New("discovery document of another issuer")

// discoveryIssuerMismatch is Google's answer to errDiscoveryIssuer.
const discoveryIssuerMismatch = "`issuer` claim in OIDC discovery document does not match the issuer specified in the request."

// DiscoveryKeys fetches issuer/.well-known/openid-configuration and its
// jwks_uri with client (e.g. one that trusts a kube-apiserver's CA and
// sends its credentials), as Google does for an OIDC provider.
func DiscoveryKeys(issuer string, client *http.Client) KeySource {
	return func(ctx context.Context) (jose.JSONWebKeySet, error) {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, client, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return jose.JSONWebKeySet{}, err
		}
		if doc.Issuer != issuer {
			return jose.JSONWebKeySet{}, errDiscoveryIssuer
		}
		var set jose.JSONWebKeySet
		err := getJSON(ctx, client, doc.JWKSURI, &set)
		return set, err
	}
}

func getJSON(ctx context.Context, client *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

// audiencePattern is a workload identity pool provider's full resource name.
var audiencePattern = regexp.MustCompile(`^//iam\.googleapis\.com/projects/[^/]+/locations/[^/]+/workloadIdentityPools/[^/]+/providers/[^/]+$`)

// workforcePattern is a workforce pool provider, which Google also accepts
// as an audience but this server does not serve.
var workforcePattern = regexp.MustCompile(`^//iam\.googleapis\.com/locations/[^/]+/workforcePools/[^/]+/providers/[^/]+$`)
