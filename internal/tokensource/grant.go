package tokensource

import (
	"context"
)

// A grant is one way of getting a token: today Microsoft Entra ID client
// credentials through MSAL Go (entraGrant) and OAuth2 client credentials
// (clientCredentialsGrant). The engine does what every grant shares: the
// host and scheme policy on every request, answer and token size caps, the
// timeout, the per-key state, and the common classification of failures,
// which also keeps every secret the call recorded out of the error text.
//
// A new grant (RFC 8693 token exchange, AWS STS web identity, Google
// external_account) is a file implementing this interface plus one case in
// Request.grant. It must:
//   - endpoints: name every configured URL the credential may be sent to,
//     at least one, the one the call starts at first; all are checked
//     against AllowedHosts and the operator's policy before anything is
//     sent.
//   - keyParts: return what tells its tokens apart besides the client,
//     credential, scopes and extra parameters; the first part is a label no
//     other grant uses, and the label fixes how many parts follow. They are
//     names and settings only, never secret material: InputHash, which is
//     published in status, is made from them too.
//   - validate: check every field it reads and refuse the fields it does
//     not, without any call, as *ConfigError; the Request helpers
//     (checkEndpoints, checkClient, checkCredential, checkScopes) do the
//     common part.
//   - fetch: make its call with c.e.client only (the guard sees every
//     request), register every secret it sends with c.st.addSecret, and
//     return a Token with a positive lifetime or errNoExpiry.
//   - classify: turn its library's errors into *Error after the engine's
//     common cases; httpError and Engine.networkError do most of it.
//   - keepsTokens: say whether per-key state holds tokens (MSAL's cache), so
//     that a refused token is dropped with it.
type grant interface {
	endpoints(r Request) []endpoint
	keyParts(r Request) []string
	validate(r Request) *ConfigError
	fetch(ctx context.Context, c *call) (Token, error)
	classify(e *Engine, err error, secrets []string) error
	keepsTokens() bool
}

// endpoint is a configured URL and the Request field that holds it, for
// messages.
type endpoint struct {
	field, url string
}

// call is what one Fetch hands its grant.
type call struct {
	e     *Engine
	req   Request
	key   string // req's CacheKey, for the engine's per-key state
	st    *callState
	fresh func(Token) bool // nil, or whether a cached token is still good
}

// grant picks how r gets its token. It is the one place a grant is chosen.
func (r Request) grant() grant {
	switch {
	case r.Exchange != nil:
		return tokenExchangeGrant{}
	case r.AWS != nil:
		return awsGrant{}
	case r.Google != nil:
		return googleGrant{}
	case r.Authority != "":
		return entraGrant{}
	default:
		return clientCredentialsGrant{}
	}
}
