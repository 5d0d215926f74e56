package entraserver

import (
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FederatedCredential trusts tokens of an external issuer (workload identity
// federation), as an Entra app registration's federated identity credential does.
type FederatedCredential struct {
	Issuer   string
	Subject  string
	Audience string // Entra's default is api://AzureADTokenExchange
	// Keys verify the issuer's tokens; Entra fetches them from the issuer's
	// OIDC discovery, the test hands them over.
	Keys jose.JSONWebKeySet
}

// federatedIssuer returns the unverified issuer of an assertion, to tell a
// federated token (issuer ≠ client ID) from a certificate assertion.
func federatedIssuer(tok *jwt.JSONWebToken) string {
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return ""
	}
	return c.Issuer
}

// checkFederated validates an external token against the app's federated
// credentials with Entra's AADSTS70021x answers.
func (s *Server) checkFederated(app App, tok *jwt.JSONWebToken, issuer string) *entraError {
	var fc *FederatedCredential
	for i := range app.Federated {
		if app.Federated[i].Issuer == issuer {
			fc = &app.Federated[i]
		}
	}
	if fc == nil {
		return fail(http.StatusBadRequest, "invalid_request", 700211, "No matching federated identity record found for presented assertion issuer '%s'.", issuer)
	}
	var c jwt.Claims
	if !verifiedClaims(tok, fc.Keys, &c) {
		return fail(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
	}
	if !c.Audience.Contains(fc.Audience) {
		return fail(http.StatusBadRequest, "invalid_request", 700212, "No matching federated identity record found for presented assertion audience '%v'.", []string(c.Audience))
	}
	if c.Subject != fc.Subject {
		return fail(http.StatusBadRequest, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject '%s'.", c.Subject)
	}
	s.mu.Lock()
	s.federatedCalls[app.ClientID]++
	now := s.clock.Now()
	s.mu.Unlock()
	return checkTimes(c, now)
}

func verifiedClaims(tok *jwt.JSONWebToken, keys jose.JSONWebKeySet, out *jwt.Claims) bool {
	for _, k := range keys.Keys {
		if err := tok.Claims(k.Key, out); err == nil {
			return true
		}
	}
	return false
}

// FederatedTokenCalls counts token calls that presented a valid federated token.
func (s *Server) FederatedTokenCalls(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.federatedCalls[clientID]
}
