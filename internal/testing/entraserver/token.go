package entraserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// entraError is an error answer in Entra's JSON shape.
type entraError struct {
	status int
	code   string // RFC 6749 error
	aadsts int
	msg    string
}

func fail(status int, code string, aadsts int, format string, args ...any) *entraError {
	return &entraError{status: status, code: code, aadsts: aadsts, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodPost {
		s.writeError(w, r, fail(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a %s request.", r.Method))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, fail(http.StatusBadRequest, "invalid_request", 900144, "The request body could not be parsed."))
		return
	}
	id, secret, basic, ok := clientAuth(r)
	s.count(id, r.PostForm)
	if !s.tenantKnown(tenant) {
		s.writeError(w, r, tenantNotFound("invalid_request", tenant))
		return
	}
	if !ok {
		s.writeError(w, r, fail(http.StatusBadRequest, "invalid_request", 50012, "Client credentials were sent both in the Authorization header and in the body, or the header is malformed."))
		return
	}
	app, e := s.grant(r, tenant, id, secret, basic)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	if f, hit := s.nextFault(id); hit {
		s.writeFault(w, r, f, app)
		return
	}
	s.writeToken(w, app)
}

func tenantNotFound(code, tenant string) *entraError {
	return fail(http.StatusBadRequest, code, 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)
}

// count records the call.
func (s *Server) count(clientID string, form url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totalCalls++
	s.tokenCalls[clientID]++
	s.forms[clientID] = form
}

// nextFault pops the next fault for an authenticated call of clientID.
func (s *Server) nextFault(clientID string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.ClientID == "" || f.ClientID == clientID {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

// grant checks the request as Entra does, in Entra's order: the request,
// the app in this tenant, the scope's form, the client's credential, then
// the resource in this tenant.
func (s *Server) grant(r *http.Request, tenant, id, secret string, basic bool) (App, *entraError) {
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		return App{}, fail(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", gt)
	}
	if id == "" {
		return App{}, fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	app, _, known := s.app(tenant, id)
	if !known {
		return App{}, fail(http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", id, tenant)
	}
	resource, e := checkScope(f.Get("scope"))
	if e != nil {
		return App{}, e
	}
	if e := s.authenticate(r, app, secret, basic); e != nil {
		return App{}, e
	}
	if !s.resourceKnown(tenant, resource) {
		return App{}, fail(http.StatusBadRequest, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenant)
	}
	return app, nil
}

// authenticate checks the one client credential the request carries.
func (s *Server) authenticate(r *http.Request, app App, secret string, basic bool) *entraError {
	f := r.PostForm
	s.mu.Lock()
	echo := s.echo
	s.mu.Unlock()
	assertion := f.Get("client_assertion")
	switch {
	case assertion != "" && (secret != "" || basic):
		return fail(http.StatusBadRequest, "invalid_request", 50012, "Only one client authentication method may be used.")
	case assertion != "":
		if t := f.Get("client_assertion_type"); t != jwtBearer {
			return fail(http.StatusBadRequest, "invalid_request", 50027, "Invalid client_assertion_type '%s'.", t)
		}
		e := s.checkAssertion(app, assertion, "https://"+r.Host+r.URL.Path)
		if e != nil && echo {
			e.msg += " Assertion received: " + assertion
		}
		return e
	case secret != "":
		if !secretMatches(app.Secrets, secret) {
			e := fail(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.ClientID)
			if echo {
				e.msg += " Secret received: " + secret
			}
			return e
		}
		return nil
	default:
		return fail(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
}

func secretMatches(registered []string, got string) bool {
	match := 0
	for _, s := range registered {
		match |= subtle.ConstantTimeCompare([]byte(s), []byte(got))
	}
	return match == 1
}

// checkScope applies the client credentials rule: exactly one
// "<resource>/.default"; the OIDC scopes MSAL adds are ignored. It returns
// the resource.
func checkScope(scope string) (string, *entraError) {
	var rest []string
	for _, sc := range strings.Fields(scope) {
		switch sc {
		case "openid", "profile", "offline_access":
		default:
			rest = append(rest, sc)
		}
	}
	switch {
	case len(rest) == 0:
		return "", fail(http.StatusBadRequest, "invalid_request", 90014, "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request.")
	case len(rest) > 1:
		return "", fail(http.StatusBadRequest, "invalid_scope", 70011, "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid. Only one resource can be requested at a time.", strings.Join(rest, " "))
	case !strings.HasSuffix(rest[0], "/.default") || rest[0] == "/.default":
		return "", fail(http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", rest[0])
	}
	return strings.TrimSuffix(rest[0], "/.default"), nil
}

func (s *Server) writeToken(w http.ResponseWriter, app App) {
	s.mu.Lock()
	tok := opaqueToken()
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	exp := app.ExpiresIn
	if exp == 0 {
		exp = 3599
	}
	body := map[string]any{
		"token_type":     "Bearer",
		"expires_in":     exp,
		"ext_expires_in": exp,
		"access_token":   tok,
	}
	if app.RefreshIn > 0 {
		body["refresh_in"] = app.RefreshIn
	}
	writeJSON(w, http.StatusOK, body)
}

func opaqueToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return "fake." + base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, f Fault, app App) {
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Location != "" {
		w.Header().Set("Location", f.Location)
	}
	switch {
	case f.Body != "":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(statusOr200(f.Status))
		_, _ = w.Write([]byte(f.Body))
	case f.Status >= 400:
		s.writeError(w, r, faultError(f.Status))
	case f.Status >= 300:
		w.WriteHeader(f.Status)
	default:
		s.writeToken(w, app)
	}
}

func statusOr200(s int) int {
	if s == 0 {
		return http.StatusOK
	}
	return s
}

// faultError is Entra's answer for an injected status.
func faultError(status int) *entraError {
	switch {
	case status == http.StatusTooManyRequests:
		return fail(status, "temporarily_unavailable", 90055, "The request has been throttled. Please try again later.")
	case status >= 500:
		return fail(status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
	case status == http.StatusUnauthorized:
		return fail(status, "invalid_client", 50012, "Authentication failed.")
	case status == http.StatusForbidden:
		return fail(status, "unauthorized_client", 7000112, "Application is disabled.")
	}
	return fail(status, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *entraError) {
	s.mu.Lock()
	now := s.clock.Now().UTC()
	s.mu.Unlock()
	trace, corr := randomID(), r.Header.Get("client-request-id")
	if corr == "" {
		corr = randomID()
	}
	ts := now.Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.aadsts, e.msg, trace, corr, ts)
	w.Header().Set("x-ms-request-id", trace)
	w.Header().Set("client-request-id", corr)
	writeJSON(w, e.status, map[string]any{
		"error":             e.code,
		"error_description": desc,
		"error_codes":       []int{e.aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
