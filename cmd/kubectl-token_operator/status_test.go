package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func TestStatusShowsConditionsTimesFailureAndEvents(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	ns := k8s.NewNamespace(t)
	tr := newTR(t, ns, "orders-api", "orders-api-token")
	other := newTR(t, ns, "billing-api", "")
	setStatus(t, tr, v1.TokenRequestStatus{
		ObservedGeneration: tr.Generation,
		SecretName:         "orders-api-token",
		ExpiresAt:          at(now.Add(41 * time.Minute)),
		RefreshAt:          at(now.Add(11 * time.Minute)),
		LastRefreshTime:    at(now.Add(-19 * time.Minute)),
		FailedAttempts:     2,
		LastFailureReason:  v1.ReasonTokenServiceUnavailable,
		LastFailureTime:    at(now.Add(-5 * time.Minute)),
		NextRetryTime:      at(now.Add(90 * time.Second)),
		Conditions: []metav1.Condition{
			{Type: v1.ConditionWarning, Status: metav1.ConditionTrue, Reason: v1.ReasonShortLifetime,
				Message: "tokens live 4m, less than the 5m minimum", LastTransitionTime: metav1.NewTime(now.Add(-19 * time.Minute))},
			{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonRefreshed,
				Message: "the Secret holds a token until its expiry", LastTransitionTime: metav1.NewTime(now.Add(-19 * time.Minute))},
			{Type: v1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: v1.ReasonTokenServiceUnavailable,
				Message: "token endpoint answered 503; retrying", LastTransitionTime: metav1.NewTime(now.Add(-5 * time.Minute))},
			{Type: v1.ConditionStalled, Status: metav1.ConditionFalse, Reason: v1.ReasonUpToDate,
				Message: "nothing needs a person", LastTransitionTime: metav1.NewTime(now.Add(-19 * time.Minute))},
		},
	})
	secretWithToken(t, ns, "orders-api-token", now.Add(-19*time.Minute), now.Add(41*time.Minute), now.Add(11*time.Minute))

	// Twelve core/v1 events, one a minute, the newest 5m ago; then one
	// events.k8s.io/v1 event as the operator writes them, 1m ago; and one
	// about the other TokenRequest.
	for i := 1; i <= 12; i++ {
		when := metav1.NewTime(now.Add(-time.Duration(17-i) * time.Minute))
		k8s.MustCreate(t, &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("orders-api.%02d", i)},
			InvolvedObject: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "TokenRequest",
				Namespace: ns, Name: tr.Name, UID: tr.UID},
			Type: corev1.EventTypeWarning, Reason: fmt.Sprintf("Reason%02d", i), Message: fmt.Sprintf("message %02d", i),
			FirstTimestamp: when, LastTimestamp: when, Count: int32(i%3 + 1),
			Source: corev1.EventSource{Component: "token-operator"},
		})
	}
	k8s.MustCreate(t, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-api.new"},
		Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "TokenRequest",
			Namespace: ns, Name: tr.Name, UID: tr.UID},
		EventTime: metav1.NewMicroTime(now.Add(-time.Minute)), ReportingController: "token-operator",
		ReportingInstance: "token-operator-0", Action: v1.ReasonRefreshFailed,
		Type: corev1.EventTypeWarning, Reason: v1.ReasonRefreshFailed, Note: "token endpoint answered 503",
	})
	when := metav1.NewTime(now.Add(-2 * time.Minute))
	k8s.MustCreate(t, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing-api.1"},
		InvolvedObject: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "TokenRequest",
			Namespace: ns, Name: other.Name, UID: other.UID},
		Type: corev1.EventTypeNormal, Reason: "BillingEvent", Message: "about billing-api",
		FirstTimestamp: when, LastTimestamp: when, Count: 1,
	})

	var out bytes.Buffer
	if err := printStatus(ctx, k8s, &out, ns, "orders-api", now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Logf("status:\n%s", got)

	mustContainInOrder(t, got,
		ns+"/orders-api",
		fmt.Sprintf("%d (observed %d)", tr.Generation, tr.Generation),
		"orders-api-token",
		// Conditions in the order Ready, Reconciling, Stalled, Warning.
		"Ready", "True", v1.ReasonRefreshed, "19m ago", "the Secret holds a token until its expiry",
		"Reconciling", v1.ReasonTokenServiceUnavailable, "5m ago", "token endpoint answered 503; retrying",
		"Stalled", "False", v1.ReasonUpToDate,
		"Warning", v1.ReasonShortLifetime, "tokens live 4m, less than the 5m minimum",
		// Token times from the Secret's annotations.
		"Issued:", now.Add(-19*time.Minute).Format(time.RFC3339)+" (19m ago)",
		"Expires:", now.Add(41*time.Minute).Format(time.RFC3339)+" (in 41m)",
		"Refresh:", "(in 11m)",
		"Last failure:", "TokenServiceUnavailable, 2 failed attempts, last 5m ago, next retry in 1m30s",
		// The newest ten events, newest last.
		"Events:", "13m ago", "Reason04", "message 04 (x2)", "Reason05",
		"5m ago", "Reason12", "message 12",
		"1m ago", v1.ReasonRefreshFailed, "token endpoint answered 503",
	)
	for _, absent := range []string{"Reason01", "Reason02", "Reason03", "BillingEvent", "about billing-api", "observed 0"} {
		if strings.Contains(got, absent) {
			t.Errorf("status contains %q, want it left out", absent)
		}
	}
	if !strings.Contains(got, "message 05 (x3)") {
		t.Errorf("status does not show the count of a repeated event (message 05 (x3))")
	}
	for _, secret := range []string{fakeToken, base64.StdEncoding.EncodeToString([]byte(fakeToken)), "Bearer"} {
		if strings.Contains(got, secret) {
			t.Errorf("status printed the Secret's value %q", secret)
		}
	}
}

func TestStatusBeforeTheOperatorActed(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ns := k8s.NewNamespace(t)
	newTR(t, ns, "fresh", "")
	var out bytes.Buffer
	if err := printStatus(context.Background(), k8s, &out, ns, "fresh", now); err != nil {
		t.Fatal(err)
	}
	mustContainInOrder(t, out.String(),
		"1 (observed 0): the operator has not acted on the latest spec yet",
		"Secret:", "fresh", "Conditions:", "none yet",
		"Token:", "Secret:", "not found", "Expires:", "-",
		"Last failure:", "none", "Events:", "none")

	if err := printStatus(context.Background(), k8s, &out, ns, "missing", now); err == nil {
		t.Error("status of a missing TokenRequest succeeded, want an error")
	}
}

func TestStatusTable(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	ns := k8s.NewNamespace(t)
	elsewhere := k8s.NewNamespace(t)
	a := newTR(t, ns, "a-ready", "a-token")
	setStatus(t, a, v1.TokenRequestStatus{
		ObservedGeneration: a.Generation, SecretName: "a-token",
		ExpiresAt: at(now.Add(41 * time.Minute)), RefreshAt: at(now.Add(11 * time.Minute)),
		Conditions: []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1.ReasonIssued, Message: "ok", LastTransitionTime: metav1.NewTime(now)}},
	})
	b := newTR(t, ns, "b-stalled", "")
	setStatus(t, b, v1.TokenRequestStatus{
		LastFailureReason: v1.ReasonTokenServiceRejected,
		Conditions: []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: v1.ReasonTokenServiceRejected, Message: "invalid_client", LastTransitionTime: metav1.NewTime(now)}},
	})
	secretWithToken(t, ns, "a-token", now, now.Add(41*time.Minute), now.Add(11*time.Minute))
	newTR(t, elsewhere, "c-elsewhere", "")

	var out bytes.Buffer
	if err := printTable(ctx, k8s, &out, ns, now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Logf("table:\n%s", got)
	mustContainInOrder(t, got,
		"NAME", "READY", "REASON", "SECRET", "EXPIRES", "REFRESH", "FAILING", "AGE",
		"a-ready", "True", v1.ReasonIssued, "a-token", "in 41m", "in 11m", "-",
		"b-stalled", "False", v1.ReasonTokenServiceRejected, "b-stalled", "-", "-", v1.ReasonTokenServiceRejected)
	for _, absent := range []string{"c-elsewhere", "NAMESPACE", fakeToken} {
		if strings.Contains(got, absent) {
			t.Errorf("table contains %q, want it left out", absent)
		}
	}

	out.Reset()
	if err := printTable(ctx, k8s, &out, "", now); err != nil {
		t.Fatal(err)
	}
	mustContainInOrder(t, out.String(), "NAMESPACE", "NAME", ns, "a-ready", ns, "b-stalled")
	mustContainInOrder(t, out.String(), elsewhere, "c-elsewhere")

	out.Reset()
	empty := k8s.NewNamespace(t)
	if err := printTable(ctx, k8s, &out, empty, now); err != nil {
		t.Fatal(err)
	}
	if want := "No TokenRequests in namespace " + empty; !strings.Contains(out.String(), want) {
		t.Errorf("table of an empty namespace printed %q, want %q", out.String(), want)
	}
}

// mustContainInOrder checks that s holds each of want, each after the one
// before.
func mustContainInOrder(t *testing.T, s string, want ...string) {
	t.Helper()
	rest := s
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output:\n%s\nlacks %q after the text before it (in order: %q)", s, w, want)
		}
		rest = rest[i+len(w):]
	}
}
