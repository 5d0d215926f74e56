package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func TestRenew(t *testing.T) {
	ctx := context.Background()
	ns := k8s.NewNamespace(t)
	elsewhere := k8s.NewNamespace(t)
	newTR(t, ns, "a", "")
	newTR(t, ns, "b", "")
	newTR(t, elsewhere, "c", "")
	annotation := func(ns, name string) string {
		return k8s.GetTR(t, ns, name).Annotations[v1.AnnotationRefreshRequestedAt]
	}

	first := time.Date(2026, 11, 30, 22, 10, 5, 123, time.UTC)
	var out bytes.Buffer
	if err := renew(ctx, k8s, &out, ns, []string{"a"}, first); err != nil {
		t.Fatal(err)
	}
	if got, want := annotation(ns, "a"), "2026-11-30T22:10:05Z"; got != want {
		t.Errorf("a: %s = %q, want %q", v1.AnnotationRefreshRequestedAt, got, want)
	}
	if got := annotation(ns, "b"); got != "" {
		t.Errorf("b, not named, got %s = %q", v1.AnnotationRefreshRequestedAt, got)
	}
	if !strings.Contains(out.String(), ns+"/a") || strings.Contains(out.String(), ns+"/b") {
		t.Errorf("renew a printed %q", out.String())
	}

	second := first.Add(time.Minute)
	out.Reset()
	if err := renew(ctx, k8s, &out, ns, nil, second); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if got, want := annotation(ns, name), second.Format(time.RFC3339); got != want {
			t.Errorf("%s after --all: %s = %q, want %q", name, v1.AnnotationRefreshRequestedAt, got, want)
		}
		if !strings.Contains(out.String(), ns+"/"+name) {
			t.Errorf("renew --all printed %q, want it to name %s/%s", out.String(), ns, name)
		}
	}
	if got := annotation(elsewhere, "c"); got != "" {
		t.Errorf("c in another namespace got %s = %q", v1.AnnotationRefreshRequestedAt, got)
	}

	err := renew(ctx, k8s, &out, ns, []string{"missing"}, second)
	if !apierrors.IsNotFound(err) {
		t.Errorf("renew of a missing TokenRequest: %v, want NotFound", err)
	}
}
