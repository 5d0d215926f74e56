package tokensource

import (
	"context"
	"errors"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
)

// refusal is an assertion source's error that says retrying will not fix it.
type refusal struct{}

func (refusal) Error() string {
	return "the API server refused a service account token (403 Forbidden)"
}
func (refusal) Terminal() bool { return true }

// A refusal from the assertion source (a 403 from the API server) reaches
// the caller as it is, on both protocols, for the caller to explain; it is
// not turned into a retryable credential_unavailable.
func TestATerminalAssertionSourceFailureIsPassedOn(t *testing.T) {
	f := newErrorFixture(t)
	src := &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) { return "", refusal{} }}
	for _, req := range []Request{f.entraReq("app", src), f.tokenReq("app", src)} {
		_, err := f.eng.Fetch(context.Background(), req, nil)
		var r refusal
		if !errors.As(err, &r) {
			t.Errorf("got %v (%T), want the source's refusal", err, err)
		}
	}
}
