package googlests

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxSubjectLifetime is the longest subject token Google accepts (exp-iat).
const maxSubjectLifetime = 24 * time.Hour

// invalidTarget is Google's answer for an unknown, disabled or deleted provider.
const invalidTarget = `The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.`

// stsParams are the exchange parameters; the JSON body may spell them in
// snake_case or, as proto3 JSON allows, lowerCamelCase.
var stsParams = map[string]string{
	"grantType": "grant_type", "requestedTokenType": "requested_token_type",
	"subjectTokenType": "subject_token_type", "subjectToken": "subject_token",
}

func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	if f := s.count(STS); f != nil {
		pause(r, f.Delay)
		writeFault(w, f)
		return
	}
	if r.Method != http.MethodPost {
		writeGoogleError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
		return
	}
	params, msg := readParams(r)
	if msg != "" {
		badRequest("invalid_request", msg).write(w)
		return
	}
	s.recordExchange(params)
	p, e := s.checkRequest(params)
	if e == nil {
		var claims *jwt.Claims
		if claims, e = s.checkSubject(r, p, params["subject_token"]); e == nil {
			s.answerExchange(w, p, claims, params["scope"])
			return
		}
	}
	if s.echoing() {
		e.description += " subject_token: " + params["subject_token"]
	}
	e.write(w)
}

// readParams reads a form or JSON body into one map, or says why not.
func readParams(r *http.Request) (map[string]string, string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err.Error()
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	out := map[string]string{}
	if ct == "application/json" {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, "Invalid JSON payload received. " + err.Error()
		}
		for k, v := range m {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Sprintf("Invalid JSON payload received. Invalid value at '%s' (TYPE_STRING)", k)
			}
			if snake, ok := stsParams[k]; ok {
				k = snake
			}
			out[k] = str
		}
		return out, ""
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err.Error()
	}
	for k := range form {
		out[k] = form.Get(k)
	}
	return out, ""
}

func (s *Server) recordExchange(params map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastExchange = map[string]string{}
	for k, v := range params {
		if k != "subject_token" {
			s.lastExchange[k] = v
		}
	}
}

// checkRequest checks the parameters that do not need the subject token
// and finds the provider the audience names.
func (s *Server) checkRequest(params map[string]string) (Provider, *stsError) {
	switch {
	case params["grant_type"] != GrantTypeExchange:
		return Provider{}, badRequest("invalid_request", `Invalid value for "grant_type".`) // wording not public
	case params["requested_token_type"] != TokenTypeAccessToken:
		return Provider{}, badRequest("invalid_request", `Invalid value for "requested_token_type".`) // wording not public
	case params["subject_token_type"] != TokenTypeJWT && params["subject_token_type"] != TokenTypeIDToken:
		return Provider{}, badRequest("invalid_request", `Invalid value for "subject_token_type". Workload identity pool OIDC providers accept urn:ietf:params:oauth:token-type:jwt or urn:ietf:params:oauth:token-type:id_token.`) // wording not public
	case params["subject_token"] == "":
		return Provider{}, badRequest("invalid_request", `Invalid value for "subject_token".`) // wording not public
	}
	if opts, ok := params["options"]; ok {
		var m map[string]any
		if json.Unmarshal([]byte(opts), &m) != nil {
			return Provider{}, badRequest("invalid_request", `Invalid value for "options". This value should be a JSON-encoded object.`) // wording not public
		}
	}
	aud := params["audience"]
	if workforcePattern.MatchString(aud) {
		return Provider{}, badRequest("invalid_target", invalidTarget)
	}
	if !audiencePattern.MatchString(aud) {
		return Provider{}, badRequest("invalid_request", `Invalid value for "audience". This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats.`)
	}
	s.mu.Lock()
	p, ok := s.providers[aud]
	s.mu.Unlock()
	if !ok || p.Disabled {
		return Provider{}, badRequest("invalid_target", invalidTarget)
	}
	return p, nil
}

// signingAlgorithms are the JWS algorithms Google accepts from OIDC providers.
var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// checkSubject verifies the subject token as the provider demands.
func (s *Server) checkSubject(r *http.Request, p Provider, raw string) (*jwt.Claims, *stsError) {
	tok, err := jwt.ParseSigned(raw, signingAlgorithms)
	if err != nil {
		return nil, badRequest("invalid_grant", "Unable to parse the ID Token.") // wording not public
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, badRequest("invalid_grant", "Unable to parse the ID Token.")
	}
	if unverified.Issuer != p.Issuer {
		return nil, badRequest("invalid_grant", fmt.Sprintf("The issuer in ID Token %s does not match the expected ones: %s.", unverified.Issuer, p.Issuer))
	}
	if p.Keys == nil {
		return nil, badRequest("invalid_grant", "The OIDC provider has no keys.")
	}
	keys, err := p.Keys(r.Context())
	if errors.Is(err, errDiscoveryIssuer) {
		return nil, badRequest("invalid_grant", discoveryIssuerMismatch)
	}
	if err != nil {
		return nil, badRequest("invalid_grant", "Failed to fetch the JWKS of the OIDC provider.") // wording not public
	}
	claims, ok := verify(tok, keys)
	if !ok {
		return nil, badRequest("invalid_grant", "Invalid ID Token signature.") // wording not public
	}
	if e := checkClaims(p, claims, s.now()); e != nil {
		return nil, e
	}
	return claims, nil
}

// verify checks the signature with the key the header names, or any key
// when it names none.
func verify(tok *jwt.JSONWebToken, set jose.JSONWebKeySet) (*jwt.Claims, bool) {
	kid := tok.Headers[0].KeyID
	for _, k := range set.Keys {
		// A key without an ID (as read from a PEM file) may verify any token.
		if kid != "" && k.KeyID != "" && k.KeyID != kid {
			continue
		}
		var c jwt.Claims
		if err := tok.Claims(k.Key, &c); err == nil {
			return &c, true
		}
	}
	return nil, false
}

// checkClaims checks audience, times, subject and attribute condition.
func checkClaims(p Provider, c *jwt.Claims, now time.Time) *stsError {
	allowed := p.audiences()
	if !containsAny(c.Audience, allowed) {
		return badRequest("invalid_grant", fmt.Sprintf("The audience in ID Token %v does not match the expected audience %s.", []string(c.Audience), strings.Join(allowed, ", ")))
	}
	if c.Expiry == nil || c.IssuedAt == nil {
		return badRequest("invalid_grant", "The ID Token must have the exp and iat claims.") // wording not public
	}
	exp, iat := c.Expiry.Time(), c.IssuedAt.Time()
	switch {
	case !now.Before(exp):
		return badRequest("invalid_grant", fmt.Sprintf("ID Token issued at %d is stale to sign-in.", iat.Unix()))
	case exp.Sub(iat) > maxSubjectLifetime:
		return badRequest("invalid_grant", "The lifetime of the ID Token must not exceed 24 hours.") // wording not public
	case iat.After(now.Add(time.Minute)) || (c.NotBefore != nil && c.NotBefore.Time().After(now.Add(time.Minute))):
		return badRequest("invalid_grant", fmt.Sprintf("ID Token issued at %d is not yet valid.", iat.Unix())) // wording not public
	case c.Subject == "":
		return badRequest("invalid_grant", "The mapped attribute google.subject must not be empty.") // wording not public
	case !p.conditionHolds(c.Subject):
		return badRequest("unauthorized_client", "The given credential is rejected by the attribute condition.")
	}
	return nil
}

func containsAny(have jwt.Audience, want []string) bool {
	for _, w := range want {
		if have.Contains(w) {
			return true
		}
	}
	return false
}

// answerExchange issues a federated token that outlives neither the
// configured lifetime nor the subject token.
func (s *Server) answerExchange(w http.ResponseWriter, p Provider, c *jwt.Claims, scope string) {
	s.mu.Lock()
	now, ttl := s.clock.Now(), s.federatedTTL
	s.mu.Unlock()
	expiry := now.Add(ttl)
	if exp := c.Expiry.Time(); exp.Before(expiry) {
		expiry = exp
	}
	v := s.issue(token{principal: p.PrincipalFor(c.Subject), federated: true, scopes: strings.Fields(scope), expiry: expiry})
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      v,
		"issued_token_type": TokenTypeAccessToken,
		"token_type":        "Bearer",
		"expires_in":        int(expiry.Sub(now) / time.Second),
	})
}
