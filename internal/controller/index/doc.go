// Package index holds the field indexes both reconcilers list by, and the
// lists they make with them: which TokenRequests use a credential, an
// output Secret name or an issuer, and which issuers use a credential.
// internal/operator registers them once, before either reconciler starts.
package index
