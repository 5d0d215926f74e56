package googlests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Lifetime bounds of generateAccessToken.
const (
	maxLifetime         = time.Hour
	maxExtendedLifetime = 12 * time.Hour
)

// insufficientScopes is Google's answer to a token without the needed scope.
const insufficientScopes = "Request had insufficient authentication scopes."

// durationPattern is proto3 JSON's Duration: seconds with up to nine
// fractional digits and an "s".
var durationPattern = regexp.MustCompile(`^(\d+)(\.\d{1,9})?s$`)

// namePattern is the resource name of a service account in the URL path.
var namePattern = regexp.MustCompile(`^/v1/projects/([^/]+)/serviceAccounts/([^/:]+):generateAccessToken$`)

type generateRequest struct {
	Scope     []string `json:"scope"`
	Lifetime  string   `json:"lifetime"`
	Delegates []string `json:"delegates"`
}

func (s *Server) generateAccessToken(w http.ResponseWriter, r *http.Request) {
	if f := s.count(GenerateAccessToken); f != nil {
		pause(r, f.Delay)
		writeFault(w, f)
		return
	}
	if r.Method != http.MethodPost {
		s.apiError(w, r, http.StatusMethodNotAllowed, "", "Method Not Allowed")
		return
	}
	caller, ok := s.bearer(r)
	if !ok {
		s.apiError(w, r, http.StatusUnauthorized, "", unauthenticated)
		return
	}
	if !hasScope(caller.scopes, CloudPlatformScope) {
		s.apiError(w, r, http.StatusForbidden, "", insufficientScopes)
		return
	}
	m := namePattern.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != "-" {
		s.apiError(w, r, http.StatusBadRequest, "", "The project in the resource name must be the wildcard '-'.") // wording not public
		return
	}
	email := m[2]
	req, lifetime, msg := readGenerateRequest(r)
	if msg != "" {
		s.apiError(w, r, http.StatusBadRequest, "", msg)
		return
	}
	s.mu.Lock()
	sa, known := s.accounts[email]
	s.mu.Unlock()
	if !known {
		s.apiError(w, r, http.StatusNotFound, "", "Not found; Gaia id not found for email "+email)
		return
	}
	if !mayImpersonate(sa, caller.principal) {
		s.apiError(w, r, http.StatusForbidden, "", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
		return
	}
	if msg := checkLifetime(sa, lifetime); msg != "" {
		s.apiError(w, r, http.StatusBadRequest, "", msg)
		return
	}
	s.answerGenerate(w, sa, req.Scope, lifetime)
}

// readGenerateRequest decodes the body strictly, as Google's JSON
// transcoding refuses unknown fields, and checks scope and delegates.
func readGenerateRequest(r *http.Request) (generateRequest, time.Duration, string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return generateRequest{}, 0, err.Error()
	}
	var req generateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, 0, "Invalid JSON payload received. " + err.Error()
	}
	if len(req.Scope) == 0 {
		return req, 0, "Scope required." // wording not public
	}
	if len(req.Delegates) > 0 {
		return req, 0, "Delegation chains are not supported by this test server."
	}
	lifetime := maxLifetime
	if req.Lifetime != "" {
		m := durationPattern.FindStringSubmatch(req.Lifetime)
		if m == nil {
			return req, 0, fmt.Sprintf("Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), Field 'lifetime', Illegal duration format; duration must end with 's': %q", req.Lifetime)
		}
		secs, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || secs > int64(maxExtendedLifetime/time.Second)*10 {
			return req, 0, "Invalid value at 'lifetime'."
		}
		lifetime = time.Duration(secs) * time.Second
	}
	return req, lifetime, ""
}

func checkLifetime(sa ServiceAccount, d time.Duration) string {
	limit := maxLifetime
	if sa.ExtendedLifetime {
		limit = maxExtendedLifetime
	}
	if d <= 0 || d > limit {
		return fmt.Sprintf("The lifetime of the requested access token must be between 1s and %ds.", int(limit/time.Second)) // wording not public
	}
	return ""
}

// mayImpersonate reports whether principal is a member of the account's
// roles/iam.workloadIdentityUser binding.
func mayImpersonate(sa ServiceAccount, principal string) bool {
	for _, m := range sa.WorkloadIdentityUsers {
		if m == principal {
			return true
		}
		if pool, ok := strings.CutSuffix(m, "/*"); ok && strings.HasPrefix(m, "principalSet://") {
			prefix := "principal://" + strings.TrimPrefix(pool, "principalSet://") + "/subject/"
			if strings.HasPrefix(principal, prefix) {
				return true
			}
		}
	}
	return false
}

func (s *Server) answerGenerate(w http.ResponseWriter, sa ServiceAccount, scopes []string, lifetime time.Duration) {
	s.mu.Lock()
	now, limit := s.clock.Now(), s.saTTLCap
	s.mu.Unlock()
	if limit > 0 && limit < lifetime {
		lifetime = limit
	}
	expiry := now.Add(lifetime).UTC().Truncate(time.Second)
	v := s.issue(token{principal: "serviceAccount:" + sa.Email, scopes: scopes, expiry: expiry})
	writeJSON(w, http.StatusOK, map[string]string{"accessToken": v, "expireTime": expiry.Format(time.RFC3339)})
}

// bearer finds the live token in the Authorization header.
func (s *Server) bearer(r *http.Request) (token, bool) {
	scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return token{}, false
	}
	return s.lookup(v)
}

func hasScope(scopes []string, want string) bool {
	for _, sc := range scopes {
		if sc == want {
			return true
		}
	}
	return false
}
