// Package issuer holds the status reconciler of TokenIssuers and
// ClusterTokenIssuers: Ready says whether the configuration and the
// credential can be used, checked by internal/resolve without asking for a
// token; status.tokenRequests counts the TokenRequests that name the issuer.
//
// Reading order, from the top down (a file uses only files below it):
//
//   - watches.go: one controller per issuer kind, and what wakes it (the
//     issuer, its credential, TokenRequests that come, go or move).
//   - reconciler.go: Reconcile checks the issuer and writes its conditions
//     and count.
package issuer
