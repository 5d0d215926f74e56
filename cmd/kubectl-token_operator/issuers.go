package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// issuerRow is one TokenIssuer or ClusterTokenIssuer as `issuers` shows it.
type issuerRow struct {
	Kind          string    `json:"kind"`
	Namespace     string    `json:"namespace,omitempty"`
	Name          string    `json:"name"`
	Ready         string    `json:"ready"`
	Reason        string    `json:"reason,omitempty"`
	Message       string    `json:"message,omitempty"`
	TokenRequests int32     `json:"tokenRequests"`
	Created       time.Time `json:"created"`
	// observed is false while the operator has not checked this generation.
	Observed bool `json:"observed"`
}

// listIssuers returns the TokenIssuers of ns (all namespaces when empty)
// and the ClusterTokenIssuers. A tenant who may not list
// ClusterTokenIssuers gets the TokenIssuers and a note.
func listIssuers(ctx context.Context, c client.Client, ns string) ([]issuerRow, string, error) {
	var rows []issuerRow
	add := func(kind, ns, name string, gen int64, created time.Time, st v1.IssuerStatus) {
		r := issuerRow{Kind: kind, Namespace: ns, Name: name, Ready: "Unknown", TokenRequests: st.TokenRequests,
			Created: created.UTC(), Observed: st.ObservedGeneration >= gen}
		if cond := meta.FindStatusCondition(st.Conditions, v1.ConditionReady); cond != nil {
			r.Ready, r.Reason, r.Message = string(cond.Status), cond.Reason, cond.Message
		}
		rows = append(rows, r)
	}
	issuers := &v1.TokenIssuerList{}
	if err := c.List(ctx, issuers, client.InNamespace(ns)); err != nil {
		return nil, "", err
	}
	for _, i := range issuers.Items {
		add(v1.KindTokenIssuer, i.Namespace, i.Name, i.Generation, i.CreationTimestamp.Time, i.Status)
	}
	note := ""
	clusterIssuers := &v1.ClusterTokenIssuerList{}
	switch err := c.List(ctx, clusterIssuers); {
	case apierrors.IsForbidden(err):
		note = "ClusterTokenIssuers: not allowed to list them"
	case err != nil:
		return nil, "", err
	}
	for _, i := range clusterIssuers.Items {
		add(v1.KindClusterTokenIssuer, "", i.Name, i.Generation, i.CreationTimestamp.Time, i.Status)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return a.Kind > b.Kind || a.Kind == b.Kind && (a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name)
	})
	return rows, note, nil
}

// printIssuers writes the issuers as a table, or as JSON or YAML
// ({"items": [...]}); a note goes to errOut.
func printIssuers(ctx context.Context, c client.Client, w, errOut io.Writer, format, ns string, now time.Time) error {
	rows, note, err := listIssuers(ctx, c, ns)
	if err != nil {
		return err
	}
	if note != "" {
		_, _ = fmt.Fprintln(errOut, note)
	}
	if format != "" {
		if rows == nil {
			rows = []issuerRow{}
		}
		return writeStructured(w, format, map[string]any{"items": rows})
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No TokenIssuers or ClusterTokenIssuers.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAMESPACE\tNAME\tREADY\tREASON\tTOKENREQUESTS\tAGE\tMESSAGE")
	for _, r := range rows {
		ready, message := r.Ready, ""
		if !r.Observed {
			ready = r.Ready + " (not checked yet)"
		}
		if r.Ready != "True" {
			message = r.Message
		}
		fmt.Fprintln(tw, strings.Join([]string{r.Kind, orDash(r.Namespace), r.Name, ready, orDash(r.Reason),
			strconv.Itoa(int(r.TokenRequests)), formatAge(now.Sub(r.Created)), message}, "\t"))
	}
	return tw.Flush()
}
