package awssts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySource returns the keys that verify an issuer's tokens. An error is
// answered as IDPCommunicationError, as STS does when it cannot fetch them.
type KeySource func(ctx context.Context) (jose.JSONWebKeySet, error)

// StaticKeys always returns keys.
func StaticKeys(keys jose.JSONWebKeySet) KeySource {
	return func(context.Context) (jose.JSONWebKeySet, error) { return keys, nil }
}

// DiscoveredKeys fetches the keys the way STS does: the issuer's OpenID
// Connect discovery document at <issuer>/.well-known/openid-configuration,
// whose issuer must be the issuer, then its jwks_uri (at the issuer's host,
// see atIssuerHost). client carries the trust and credentials the issuer
// needs: a Kubernetes API server serves both documents to authenticated
// clients only, so for envtest pass rest.HTTPClientFor(env.Config) and the
// iss of a minted service account token (envtest's is https://127.0.0.1:<port>/).
func DiscoveredKeys(issuer string, client *http.Client) KeySource {
	return func(ctx context.Context) (jose.JSONWebKeySet, error) {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, client, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return jose.JSONWebKeySet{}, err
		}
		if doc.Issuer != issuer {
			return jose.JSONWebKeySet{}, fmt.Errorf("discovery names issuer %q, not %q", doc.Issuer, issuer)
		}
		jwksURI, err := atIssuerHost(doc.JWKSURI, issuer)
		if err != nil {
			return jose.JSONWebKeySet{}, err
		}
		var keys jose.JSONWebKeySet
		if err := getJSON(ctx, client, jwksURI, &keys); err != nil {
			return jose.JSONWebKeySet{}, err
		}
		return keys, nil
	}
}

// atIssuerHost moves an https jwks_uri to the issuer's host and port. STS
// would fetch it where it points, but a test API server advertises an
// address the test cannot reach (envtest's kube-apiserver names
// 192.0.2.x there), and a test dials nothing but its own servers.
func atIssuerHost(jwksURI, issuer string) (string, error) {
	u, err := url.Parse(jwksURI)
	if err != nil || u.Scheme != "https" {
		return "", fmt.Errorf("jwks_uri %q is not an https URL", jwksURI)
	}
	iss, err := url.Parse(issuer)
	if err != nil {
		return "", err
	}
	u.Scheme, u.Host = iss.Scheme, iss.Host
	return u.String(), nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.Unmarshal(body, v)
}
