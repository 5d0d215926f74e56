package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// checkOutput refuses an -o value other than json or yaml.
func checkOutput(format string) error {
	switch format {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %q: want json or yaml", format)
}

// writeStructured writes v as indented JSON or as YAML.
func writeStructured(w io.Writer, format string, v any) error {
	var data []byte
	var err error
	if format == "yaml" {
		data, err = yaml.Marshal(v)
	} else {
		data, err = json.MarshalIndent(v, "", "  ")
		data = append(data, '\n')
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// statusReport is what `status NAME -o json|yaml` prints: what the text
// view shows, with times in RFC 3339. It holds no token.
type statusReport struct {
	Namespace          string             `json:"namespace"`
	Name               string             `json:"name"`
	Generation         int64              `json:"generation"`
	ObservedGeneration int64              `json:"observedGeneration"`
	Secret             string             `json:"secret"`
	SecretError        string             `json:"secretError,omitempty"`
	Conditions         []metav1.Condition `json:"conditions"`
	Token              tokenTimesReport   `json:"token"`
	LastFailure        *failureReport     `json:"lastFailure,omitempty"`
	Events             []eventReport      `json:"events"`
	EventsError        string             `json:"eventsError,omitempty"`
}

type tokenTimesReport struct {
	IssuedAt  *time.Time `json:"issuedAt,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	RefreshAt *time.Time `json:"refreshAt,omitempty"`
}

type failureReport struct {
	Reason         string     `json:"reason,omitempty"`
	FailedAttempts int32      `json:"failedAttempts,omitempty"`
	LastFailure    *time.Time `json:"lastFailureTime,omitempty"`
	NextRetry      *time.Time `json:"nextRetryTime,omitempty"`
}

type eventReport struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
}

// printStatusReport writes one TokenRequest's status as JSON or YAML.
func printStatusReport(ctx context.Context, c client.Client, w io.Writer, format, ns, name string) error {
	tr := &v1.TokenRequest{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, tr); err != nil {
		return err
	}
	st := tr.Status
	r := statusReport{Namespace: tr.Namespace, Name: tr.Name, Generation: tr.Generation,
		ObservedGeneration: st.ObservedGeneration, Secret: secretNameOf(tr),
		Conditions: sortedConditions(st.Conditions), Events: []eventReport{}}
	secret, err := secretMetadata(ctx, c, ns, r.Secret)
	if err != nil {
		r.SecretError = describeError(err)
	}
	issued, expires, refresh := tokenTimes(tr, secret)
	r.Token = tokenTimesReport{optTime(issued), optTime(expires), optTime(refresh)}
	if st.LastFailureReason != "" || st.FailedAttempts > 0 {
		r.LastFailure = &failureReport{Reason: st.LastFailureReason, FailedAttempts: st.FailedAttempts,
			LastFailure: optTime(timeOf(st.LastFailureTime)), NextRetry: optTime(timeOf(st.NextRetryTime))}
	}
	events, err := eventsOf(ctx, c, tr)
	if err != nil {
		r.EventsError = describeError(err)
	}
	for _, e := range events {
		r.Events = append(r.Events, eventReport{Time: eventTime(e).UTC(), Type: e.Type, Reason: e.Reason,
			Message: e.Message, Count: eventCount(e)})
	}
	return writeStructured(w, format, r)
}

// tokenRow is one TokenRequest of `status -o json|yaml` without NAME.
type tokenRow struct {
	Namespace         string     `json:"namespace"`
	Name              string     `json:"name"`
	Ready             string     `json:"ready"`
	Reason            string     `json:"reason,omitempty"`
	Secret            string     `json:"secret"`
	ExpiresAt         *time.Time `json:"expiresAt,omitempty"`
	RefreshAt         *time.Time `json:"refreshAt,omitempty"`
	LastFailureReason string     `json:"lastFailureReason,omitempty"`
	Created           time.Time  `json:"created"`
}

// printTableReport writes the TokenRequests of ns (all when empty) as JSON
// or YAML: {"items": [...]}.
func printTableReport(ctx context.Context, c client.Client, w io.Writer, format, ns string) error {
	list := &v1.TokenRequestList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return err
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
	rows := []tokenRow{}
	for i := range list.Items {
		tr := &list.Items[i]
		row := tokenRow{Namespace: tr.Namespace, Name: tr.Name, Ready: "Unknown", Secret: secretNameOf(tr),
			ExpiresAt: optTime(timeOf(tr.Status.ExpiresAt)), RefreshAt: optTime(timeOf(tr.Status.RefreshAt)),
			LastFailureReason: tr.Status.LastFailureReason, Created: tr.CreationTimestamp.UTC()}
		if cond := meta.FindStatusCondition(tr.Status.Conditions, v1.ConditionReady); cond != nil {
			row.Ready, row.Reason = string(cond.Status), cond.Reason
		}
		rows = append(rows, row)
	}
	return writeStructured(w, format, map[string]any{"items": rows})
}

// optTime is nil for the zero time, else t in UTC.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
