package googlests

import (
	"net/http"
	"strings"
	"time"
)

// WhoAmI is the whoami API's answer.
type WhoAmI struct {
	// Principal is serviceAccount:EMAIL for an impersonated token and
	// principal://… for a federated one.
	Principal string `json:"principal"`
	Scope     string `json:"scope"`
	ExpiresIn int    `json:"expires_in"`
}

// whoami stands for a Google API: it accepts a live access token with the
// cloud-platform scope, federated ones only if the test allows them.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	if f := s.count(API); f != nil {
		pause(r, f.Delay)
		writeFault(w, f)
		return
	}
	t, ok := s.bearer(r)
	s.mu.Lock()
	acceptFederated, now := s.acceptFederated, s.clock.Now()
	s.mu.Unlock()
	if !ok || (t.federated && !acceptFederated) {
		s.apiError(w, r, http.StatusUnauthorized, "", unauthenticated)
		return
	}
	if !hasScope(t.scopes, CloudPlatformScope) {
		s.apiError(w, r, http.StatusForbidden, "", insufficientScopes)
		return
	}
	writeJSON(w, http.StatusOK, WhoAmI{Principal: t.principal, Scope: strings.Join(t.scopes, " "), ExpiresIn: int(t.expiry.Sub(now) / time.Second)})
}
