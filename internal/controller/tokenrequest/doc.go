// Package tokenrequest holds the TokenRequest reconciler: gather what is
// there, decide (pure), then act.
package tokenrequest
