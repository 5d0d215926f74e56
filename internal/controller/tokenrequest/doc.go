// Package tokenrequest holds the TokenRequest reconciler: gather what is
// there, decide (pure, with an injected clock), then act. Where the token
// comes from (issuer, credential, consent) is internal/resolve's answer;
// this package only carries it out.
//
// Reading order, from the top down (a file uses only files below it):
//
//   - watches.go: SetupWithManager, and which changes wake which
//     TokenRequests.
//   - reconciler.go: the Reconciler; Reconcile runs gather → decide → act,
//     fetches a token when the plan asks for one, and writes the Secret,
//     the status and the events.
//   - plan.go: decide, the pure decision of a pass: the Secret to write, the
//     status, the events and when to look again.
//   - restarts.go: the former Secret left behind and the rollout restarts a
//     new token owes.
//   - status.go: conditions and status fields.
//   - decide.go: what a decision reads (observed) and returns (plan), and
//     which action it takes.
//   - owncache.go: the cache of the operator's own Secrets: what it keeps
//     of a Secret, and which Secrets are ours.
//
// The Reconciler's methods live in reconciler.go and watches.go alone.
package tokenrequest
