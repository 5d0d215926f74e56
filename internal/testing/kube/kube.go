// Package kube reads, changes and waits on TokenRequests and Secrets in a
// test API server, stopping the test when the API server answers with an
// error or a wait times out.
package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// DefaultWait is how long WaitReady and WaitReason wait when Cluster.Wait
// is zero.
const DefaultWait = 20 * time.Second

// Cluster is a client of a test API server with helpers that take the
// test. It is a client.Client itself.
type Cluster struct {
	client.Client
	// NamespacePrefix starts the generated name of each NewNamespace.
	NamespacePrefix string
	// Wait is how long WaitReady and WaitReason wait; DefaultWait if zero.
	Wait time.Duration
}

func (c *Cluster) wait() time.Duration {
	if c.Wait == 0 {
		return DefaultWait
	}
	return c.Wait
}

// NewNamespace creates a namespace with a generated name and returns the
// name.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: c.NamespacePrefix}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// MustCreate creates obj.
func (c *Cluster) MustCreate(t testing.TB, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// GetTR reads a TokenRequest.
func (c *Cluster) GetTR(t testing.TB, ns, name string) *v1.TokenRequest {
	t.Helper()
	return mustGet(t, c, ns, name, &v1.TokenRequest{})
}

// GetSecret reads a Secret that must exist.
func (c *Cluster) GetSecret(t testing.TB, ns, name string) *corev1.Secret {
	t.Helper()
	return mustGet(t, c, ns, name, &corev1.Secret{})
}

// FindSecret reads a Secret, or returns nil when there is none.
func (c *Cluster) FindSecret(t testing.TB, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustGet[O client.Object](t testing.TB, c *Cluster, ns, name string, obj O) O {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// UpdateTR changes a TokenRequest, retrying when the operator wrote it
// meanwhile.
func (c *Cluster) UpdateTR(t testing.TB, ns, name string, mutate func(*v1.TokenRequest)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tr := c.GetTR(t, ns, name)
		mutate(tr)
		return c.Update(context.Background(), tr)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// SeeReconcile makes an edit the operator must act on but that changes
// nothing it does (spec.deletionPolicy between unset and Delete, its
// default; under Retain spec.renewBeforePercentage), waits until
// status.observedGeneration shows a pass that read it, and returns the
// TokenRequest. Status is written last in a pass, so whatever that pass
// would write or call has happened by then: a test asserts that nothing
// happened only after this.
func (c *Cluster) SeeReconcile(t testing.TB, ns, name string) *v1.TokenRequest {
	t.Helper()
	var gen int64
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tr := c.GetTR(t, ns, name)
		switch tr.Spec.DeletionPolicy {
		case "":
			tr.Spec.DeletionPolicy = v1.DeletionPolicyDelete
		case v1.DeletionPolicyDelete:
			tr.Spec.DeletionPolicy = ""
		default: // Retain: the refresh share, which may move refreshAt
			if tr.Spec.RenewBeforePercentage == nil {
				tr.Spec.RenewBeforePercentage = ptr.To[int32](33)
			} else {
				tr.Spec.RenewBeforePercentage = nil
			}
		}
		if err := c.Update(context.Background(), tr); err != nil {
			return err
		}
		gen = tr.Generation
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var tr *v1.TokenRequest
	Eventually(t, c.wait(), fmt.Sprintf("%s to observe generation %d", name, gen), func() bool {
		tr = c.GetTR(t, ns, name)
		return tr.Status.ObservedGeneration >= gen
	})
	return tr
}

// WaitReady waits for Ready=True on the current generation and returns the
// TokenRequest.
func (c *Cluster) WaitReady(t testing.TB, ns, name string) *v1.TokenRequest {
	t.Helper()
	var tr *v1.TokenRequest
	Eventually(t, c.wait(), name+" to become Ready", func() bool {
		tr = c.GetTR(t, ns, name)
		cond := Condition(tr, v1.ConditionReady)
		return cond != nil && cond.Status == metav1.ConditionTrue && tr.Status.ObservedGeneration == tr.Generation
	})
	return tr
}

// WaitReason waits for a condition with the given status and reason and
// returns the TokenRequest.
func (c *Cluster) WaitReason(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1.TokenRequest {
	t.Helper()
	timeout := c.wait()
	deadline := time.Now().Add(timeout)
	for {
		tr := c.GetTR(t, ns, name)
		cond := Condition(tr, typ)
		if cond != nil && cond.Status == status && cond.Reason == reason {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s %s=%s %s; last seen: %s", timeout, name, typ, status, reason, Describe(cond))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Condition is the condition of type typ, or nil.
func Condition(tr *v1.TokenRequest, typ string) *metav1.Condition {
	return meta.FindStatusCondition(tr.Status.Conditions, typ)
}

// Describe renders a condition for a failure message.
func Describe(c *metav1.Condition) string {
	if c == nil {
		return "absent"
	}
	return fmt.Sprintf("%s %s %q", c.Status, c.Reason, c.Message)
}
