// Package resolve turns a TokenRequest into the token request to make
// (tokensource.Request), or a *Refusal carrying its condition reason and
// message: IssuerNotFound, IssuerNotAllowed, ScopeNotAllowed, AudienceNotAllowed,
// CredentialNotFound, CredentialNotAllowed,
// ServiceAccountCredentialsDisabled, PermissionDenied, InvalidSpec,
// InvalidCredential, IssuerNotReady. It owns issuer lookup,
// allowedNamespaces, allowedScopes and a token exchange's allowedAudiences and
// allowedResources, credential loading with its
// parsed-credential cache, consent (the allowed-issuers annotation), the
// reserved-for annotation and the audiences of service account tokens. It
// reads through the small interfaces in reader.go, so it runs without a
// manager, and calls no token service.
//
// Reading order, from the top down (a file uses only files below it):
//
//   - resolver.go: Resolve and CheckIssuer, the two ways in, and the hash
//     of the inputs a resolution names.
//   - issuer.go: the issuer a TokenRequest names, and whether it may use it.
//   - credential.go: the credential read into a token request, checked
//     against consent and the operator's policy.
//   - serviceaccount.go, secrets.go: the two kinds of credential holder.
//   - reader.go: the Resolver and the interfaces it reads through.
//   - credcache.go: credential Secrets parsed once per version.
//   - reserved.go, consent.go: the annotations a credential's owner sets.
//   - audience.go: which service account token audiences may be minted.
//   - source.go: where a token comes from (Source), and how it is named.
//   - refusal.go: Refusal, the typed answer when there is no request.
//
// A new kind of credential or grant is a case in credential.go (and a
// holder file beside secrets.go when it reads a new kind of object); the
// reconcilers do not change.
package resolve
