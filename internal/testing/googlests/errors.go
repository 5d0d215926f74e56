package googlests

import (
	"encoding/json"
	"net/http"
)

// googleStatus maps an HTTP status to the google.rpc.Code name Google
// APIs send with it.
var googleStatus = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusConflict:            "ABORTED",
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
	http.StatusGatewayTimeout:      "DEADLINE_EXCEEDED",
}

// unauthenticated is Google's answer to a missing or bad bearer token.
const unauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."

// writeGoogleError writes Google's API error document
// {"error":{"code","message","status"}}; status "" derives from code.
func writeGoogleError(w http.ResponseWriter, code int, status, message string) {
	if status == "" {
		status = googleStatus[code]
		if status == "" {
			status = "UNKNOWN"
		}
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": message, "status": status}})
}

// apiError writes a Google API error, repeating the request's bearer
// token when the test asked for echoes.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, code int, status, message string) {
	if s.echoing() {
		message += " Authorization: " + r.Header.Get("Authorization")
	}
	writeGoogleError(w, code, status, message)
}

// stsError is an OAuth-style STS refusal.
type stsError struct {
	status      int
	code        string
	description string
}

func (e *stsError) write(w http.ResponseWriter) {
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
}

func badRequest(code, description string) *stsError {
	return &stsError{status: http.StatusBadRequest, code: code, description: description}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeFault answers with an injected fault in the endpoint's error shape.
func writeFault(w http.ResponseWriter, f *Fault) {
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	// STS's own refusals are OAuth errors; a 5xx comes from Google's front
	// end in the API error shape, as IAM's do.
	if f.Endpoint == STS && status < 500 {
		code := f.Error
		if code == "" {
			code = "invalid_request"
		}
		(&stsError{status: status, code: code, description: msg}).write(w)
		return
	}
	writeGoogleError(w, status, f.Error, msg)
}
