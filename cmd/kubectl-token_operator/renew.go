package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// renew sets the refresh-requested-at annotation to now, with a merge
// patch, on the named TokenRequests of namespace ns, or on all of them when
// names is empty; the operator then gets a new token.
func renew(ctx context.Context, c client.Client, w io.Writer, ns string, names []string, now time.Time) error {
	if len(names) == 0 {
		return renewMatching(ctx, c, w, ns, "", now)
	}
	keys := make([]types.NamespacedName, len(names))
	for i, name := range names {
		keys[i] = types.NamespacedName{Namespace: ns, Name: name}
	}
	return renewKeys(ctx, c, w, keys, now)
}

// renewMatching renews the TokenRequests of namespace ns (all namespaces
// when empty) that match the label selector (all when empty).
func renewMatching(ctx context.Context, c client.Client, w io.Writer, ns, selector string, now time.Time) error {
	sel, err := labels.Parse(selector)
	if err != nil {
		return fmt.Errorf("--selector %q: %w", selector, err)
	}
	list := &v1.TokenRequestList{}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		where := "in namespace " + ns
		if ns == "" {
			where = "in any namespace"
		}
		if selector != "" {
			where += " matching " + selector
		}
		_, err := fmt.Fprintf(w, "No TokenRequests %s.\n", where)
		return err
	}
	keys := make([]types.NamespacedName, len(list.Items))
	for i, tr := range list.Items {
		keys[i] = types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}
	}
	return renewKeys(ctx, c, w, keys, now)
}

func renewKeys(ctx context.Context, c client.Client, w io.Writer, keys []types.NamespacedName, now time.Time) error {
	at := now.UTC().Format(time.RFC3339)
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{v1.AnnotationRefreshRequestedAt: at}},
	})
	if err != nil {
		return err
	}
	for _, key := range keys {
		tr := &v1.TokenRequest{}
		tr.Namespace, tr.Name = key.Namespace, key.Name
		if err := c.Patch(ctx, tr, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("renewing %s: %w", key, err)
		}
		if _, err := fmt.Fprintf(w, "tokenrequest %s: renewal requested (%s=%s)\n", key, v1.AnnotationRefreshRequestedAt, at); err != nil {
			return err
		}
	}
	return nil
}
