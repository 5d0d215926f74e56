package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// renew sets the refresh-requested-at annotation to now, with a merge
// patch, on the named TokenRequests of namespace ns, or on all of them when
// names is empty; the operator then gets a new token.
func renew(ctx context.Context, c client.Client, w io.Writer, ns string, names []string, now time.Time) error {
	if len(names) == 0 {
		list := &v1.TokenRequestList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			_, err := fmt.Fprintf(w, "No TokenRequests in namespace %s.\n", ns)
			return err
		}
		for _, tr := range list.Items {
			names = append(names, tr.Name)
		}
	}
	at := now.UTC().Format(time.RFC3339)
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{v1.AnnotationRefreshRequestedAt: at}},
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		tr := &v1.TokenRequest{}
		tr.Namespace, tr.Name = ns, name
		if err := c.Patch(ctx, tr, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("renewing %s/%s: %w", ns, name, err)
		}
		if _, err := fmt.Fprintf(w, "tokenrequest %s/%s: renewal requested (%s=%s)\n", ns, name, v1.AnnotationRefreshRequestedAt, at); err != nil {
			return err
		}
	}
	return nil
}
