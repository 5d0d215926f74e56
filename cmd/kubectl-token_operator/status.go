package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// maxEvents is how many of a TokenRequest's newest events status shows.
const maxEvents = 10

// conditionOrder is the order status lists the conditions in; others follow.
var conditionOrder = []string{v1.ConditionReady, v1.ConditionReconciling, v1.ConditionStalled, v1.ConditionWarning}

// printStatus writes the status of one TokenRequest: conditions, the token
// times of its Secret, the last failure and its newest events. Of the
// Secret it reads the metadata only, so the token never reaches the plugin.
func printStatus(ctx context.Context, c client.Client, w io.Writer, ns, name string, now time.Time) error {
	tr := &v1.TokenRequest{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, tr); err != nil {
		return err
	}
	secretName := secretNameOf(tr)
	secret, secretErr := secretMetadata(ctx, c, ns, secretName)
	events, eventsErr := eventsOf(ctx, c, tr)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	st := tr.Status
	fmt.Fprintf(tw, "TokenRequest:\t%s/%s\n", tr.Namespace, tr.Name)
	gen := fmt.Sprintf("%d (observed %d)", tr.Generation, st.ObservedGeneration)
	if st.ObservedGeneration != tr.Generation {
		gen += ": the operator has not acted on the latest spec yet"
	}
	fmt.Fprintf(tw, "Generation:\t%s\n", gen)
	fmt.Fprintf(tw, "Secret:\t%s\n", secretName)

	fmt.Fprintln(tw, "Conditions:")
	conds := sortedConditions(st.Conditions)
	if len(conds) == 0 {
		fmt.Fprintln(tw, "  none yet")
	}
	for _, cond := range conds {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", cond.Type, cond.Status, cond.Reason, relTime(cond.LastTransitionTime.Time, now), cond.Message)
	}

	fmt.Fprintln(tw, "Token:")
	if secretErr != nil {
		fmt.Fprintf(tw, "  Secret:\t%s\n", describeError(secretErr))
	}
	issued, expires, refresh := tokenTimes(tr, secret)
	fmt.Fprintf(tw, "  Issued:\t%s\n", timeAndRel(issued, now))
	fmt.Fprintf(tw, "  Expires:\t%s\n", timeAndRel(expires, now))
	fmt.Fprintf(tw, "  Refresh:\t%s\n", timeAndRel(refresh, now))

	fmt.Fprintf(tw, "Last failure:\t%s\n", lastFailure(st, now))

	fmt.Fprintln(tw, "Events:")
	switch {
	case eventsErr != nil:
		fmt.Fprintf(tw, "  %s\n", describeError(eventsErr))
	case len(events) == 0:
		fmt.Fprintln(tw, "  none")
	}
	for _, e := range events {
		msg := e.Message
		if n := eventCount(e); n > 1 {
			msg += fmt.Sprintf(" (x%d)", n)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", relTime(eventTime(e), now), e.Type, e.Reason, msg)
	}
	return tw.Flush()
}

// tokenTimes are when the token in the Secret was issued and expires, from
// the Secret's annotations, else the status, and when the operator plans to
// refresh it.
func tokenTimes(tr *v1.TokenRequest, secret *metav1.PartialObjectMetadata) (issued, expires, refresh time.Time) {
	st := tr.Status
	if secret != nil {
		issued = parseTime(secret.Annotations[v1.AnnotationIssuedAt])
		expires = parseTime(secret.Annotations[v1.AnnotationExpiresAt])
		refresh = parseTime(secret.Annotations[v1.AnnotationRefreshAt])
	}
	// The status says what the operator plans; the Secret what it holds.
	if issued.IsZero() && st.LastRefreshTime != nil {
		issued = st.LastRefreshTime.Time
	}
	if expires.IsZero() && st.ExpiresAt != nil {
		expires = st.ExpiresAt.Time
	}
	if st.RefreshAt != nil {
		refresh = st.RefreshAt.Time
	}
	return issued, expires, refresh
}

// printTable writes one line per TokenRequest of namespace ns, or of all
// namespaces when ns is empty.
func printTable(ctx context.Context, c client.Client, w io.Writer, ns string, now time.Time) error {
	list := &v1.TokenRequestList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		where := "in namespace " + ns
		if ns == "" {
			where = "in any namespace"
		}
		_, err := fmt.Fprintf(w, "No TokenRequests %s.\n", where)
		return err
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "NAME\tREADY\tREASON\tSECRET\tEXPIRES\tREFRESH\tFAILING\tAGE"
	if ns == "" {
		header = "NAMESPACE\t" + header
	}
	fmt.Fprintln(tw, header)
	for i := range list.Items {
		tr := &list.Items[i]
		ready, reason := "-", "-"
		if cond := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady); cond != nil {
			ready, reason = string(cond.Status), cond.Reason
		}
		row := []string{tr.Name, ready, reason, secretNameOf(tr),
			relTime(timeOf(tr.Status.ExpiresAt), now), relTime(timeOf(tr.Status.RefreshAt), now),
			orDash(tr.Status.LastFailureReason), formatAge(now.Sub(tr.CreationTimestamp.Time))}
		if ns == "" {
			row = append([]string{tr.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// secretNameOf is the name of a TokenRequest's output Secret.
func secretNameOf(tr *v1.TokenRequest) string {
	switch {
	case tr.Status.SecretName != "":
		return tr.Status.SecretName
	case tr.Spec.SecretName != "":
		return tr.Spec.SecretName
	}
	return tr.Name
}

// secretMetadata reads the metadata of a Secret, and never its data.
func secretMetadata(ctx context.Context, c client.Client, ns, name string) (*metav1.PartialObjectMetadata, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
		return nil, err
	}
	return m, nil
}

// eventsOf returns the newest maxEvents events about tr, newest last.
func eventsOf(ctx context.Context, c client.Client, tr *v1.TokenRequest) ([]corev1.Event, error) {
	list := &corev1.EventList{}
	if err := c.List(ctx, list, client.InNamespace(tr.Namespace),
		client.MatchingFields{"involvedObject.uid": string(tr.UID)}); err != nil {
		return nil, err
	}
	return newestEvents(list.Items, maxEvents), nil
}

// newestEvents sorts events oldest first and keeps the last n.
func newestEvents(events []corev1.Event, n int) []corev1.Event {
	sort.SliceStable(events, func(i, j int) bool { return eventTime(events[i]).Before(eventTime(events[j])) })
	if len(events) > n {
		events = events[len(events)-n:]
	}
	return events
}

// eventTime is when an event last happened, whether it was written through
// core/v1 (lastTimestamp) or events.k8s.io/v1 (series, eventTime).
func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e corev1.Event) int32 {
	if e.Series != nil && e.Series.Count > e.Count {
		return e.Series.Count
	}
	return e.Count
}

// sortedConditions lists Ready, Reconciling, Stalled and Warning first.
func sortedConditions(conds []metav1.Condition) []metav1.Condition {
	rank := func(t string) int {
		for i, known := range conditionOrder {
			if t == known {
				return i
			}
		}
		return len(conditionOrder)
	}
	out := append([]metav1.Condition(nil), conds...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Type) < rank(out[j].Type) })
	return out
}

// lastFailure describes the failure that keeps the token from being
// refreshed, or "none".
func lastFailure(st v1.TokenRequestStatus, now time.Time) string {
	if st.LastFailureReason == "" && st.FailedAttempts == 0 {
		return "none"
	}
	parts := []string{orDash(st.LastFailureReason)}
	if st.FailedAttempts > 0 {
		parts = append(parts, fmt.Sprintf("%d failed attempts", st.FailedAttempts))
	}
	if st.LastFailureTime != nil {
		parts = append(parts, "last "+relTime(st.LastFailureTime.Time, now))
	}
	if st.NextRetryTime != nil {
		parts = append(parts, "next retry "+relTime(st.NextRetryTime.Time, now))
	}
	return strings.Join(parts, ", ")
}

func describeError(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "not found"
	case apierrors.IsForbidden(err):
		return "not allowed to read: " + err.Error()
	}
	return err.Error()
}

func timeAndRel(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + relTime(t, now) + ")"
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
