package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func TestStatusOutputJSONAndYAML(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ns := k8s.NewNamespace(t)
	tr := newTR(t, ns, "orders-api", "orders-api-token")
	setStatus(t, tr, v1.TokenRequestStatus{
		ObservedGeneration: tr.Generation,
		SecretName:         "orders-api-token",
		ExpiresAt:          at(now.Add(41 * time.Minute)),
		RefreshAt:          at(now.Add(11 * time.Minute)),
		FailedAttempts:     2,
		LastFailureReason:  v1.ReasonTokenServiceUnavailable,
		NextRetryTime:      at(now.Add(90 * time.Second)),
		Conditions: []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1.ReasonRefreshed, Message: "token valid", LastTransitionTime: metav1.NewTime(now)}},
	})
	secretWithToken(t, ns, "orders-api-token", now.Add(-19*time.Minute), now.Add(41*time.Minute), now.Add(11*time.Minute))
	newTR(t, ns, "billing", "")

	for _, format := range []string{"json", "yaml"} {
		out, err := execute(t, now, "status", "-n", ns, "orders-api", "-o", format)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, fakeToken) {
			t.Fatalf("status -o %s printed the token", format)
		}
		var r statusReport
		if err := yaml.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("status -o %s printed what does not parse: %v\n%s", format, err, out)
		}
		if r.Namespace != ns || r.Name != "orders-api" || r.Secret != "orders-api-token" ||
			len(r.Conditions) != 1 || r.Conditions[0].Reason != v1.ReasonRefreshed ||
			r.Token.ExpiresAt == nil || !r.Token.ExpiresAt.Equal(now.Add(41*time.Minute)) ||
			r.Token.IssuedAt == nil || !r.Token.IssuedAt.Equal(now.Add(-19*time.Minute)) ||
			r.LastFailure == nil || r.LastFailure.Reason != v1.ReasonTokenServiceUnavailable || r.LastFailure.FailedAttempts != 2 {
			t.Errorf("status -o %s:\n%s", format, out)
		}
		if isJSON := json.Valid([]byte(out)); isJSON != (format == "json") {
			t.Errorf("status -o %s printed JSON: %v\n%s", format, isJSON, out)
		}
	}

	out, err := execute(t, now, "status", "-n", ns, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []tokenRow }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if len(list.Items) != 2 || list.Items[0].Name != "billing" || list.Items[0].Ready != "Unknown" ||
		list.Items[1].Name != "orders-api" || list.Items[1].Ready != "True" || list.Items[1].Namespace != ns {
		t.Errorf("status -o json of the namespace:\n%s", out)
	}

	if _, err := execute(t, now, "status", "-n", ns, "-o", "wide"); err == nil {
		t.Error("status -o wide succeeded, want an error naming json and yaml")
	}
}

func TestRenewAllNamespacesAndSelector(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a, b := k8s.NewNamespace(t), k8s.NewNamespace(t)
	for _, ns := range []string{a, b} {
		for name, app := range map[string]string{"orders-1": "orders", "orders-2": "orders", "billing": "billing"} {
			tr := newTR(t, ns, name, "")
			tr.Labels = map[string]string{"app": app}
			if err := k8s.Update(context.Background(), tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	renewed := func(ns, name string) string {
		return k8s.GetTR(t, ns, name).Annotations[v1.AnnotationRefreshRequestedAt]
	}

	first := now.Add(-time.Hour)
	out, err := execute(t, first, "renew", "-n", a, "-l", "app=orders")
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]map[string]bool{a: {"orders-1": true, "orders-2": true}, b: {}} {
		for _, name := range []string{"orders-1", "orders-2", "billing"} {
			if got := renewed(ns, name) != ""; got != want[name] {
				t.Errorf("renew -n A -l app=orders: %s/%s renewed %v, want %v\n%s", ns, name, got, want[name], out)
			}
		}
	}

	second := now.Add(-30 * time.Minute)
	if out, err = execute(t, second, "renew", "-A", "-l", "app=orders"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{a, b} {
		if got := renewed(ns, "orders-2"); got != second.Format(time.RFC3339) {
			t.Errorf("renew -A -l app=orders: %s/orders-2 at %q, want %s", ns, got, second.Format(time.RFC3339))
		}
		if got := renewed(ns, "billing"); got != "" {
			t.Errorf("renew -A -l app=orders renewed %s/billing", ns)
		}
		if !strings.Contains(out, "tokenrequest "+ns+"/orders-1: renewal requested") {
			t.Errorf("renew -A -l printed:\n%s\nwant it to name %s/orders-1", out, ns)
		}
	}

	if _, err = execute(t, now, "renew", "-A"); err != nil {
		t.Fatal(err)
	}
	if got := renewed(b, "billing"); got != now.Format(time.RFC3339) {
		t.Errorf("renew -A: %s/billing at %q, want %s", b, got, now.Format(time.RFC3339))
	}

	if out, err = execute(t, now, "renew", "-n", a, "-l", "app=nothing"); err != nil || !strings.Contains(out, "No TokenRequests in namespace "+a+" matching app=nothing") {
		t.Errorf("renew -l matching nothing: %v, printed %q", err, out)
	}
	for _, args := range [][]string{{"renew", "-n", a, "-l", "app in ("}, {"renew", "-n", a, "-l", "app=orders", "billing"}, {"renew", "-A", "billing"}} {
		if _, err := execute(t, now, args...); err == nil {
			t.Errorf("%v succeeded, want an error", args)
		}
	}
}

// newIssuer creates a TokenIssuer in ns (a ClusterTokenIssuer when ns is
// empty) and writes the status the operator would.
func newIssuer(t *testing.T, ns, name string, ready metav1.ConditionStatus, reason, message string, requests int32) {
	t.Helper()
	ctx := context.Background()
	spec := v1.IssuerSpec{}
	if err := yaml.Unmarshal([]byte(`
tokenURL: https://login.example.com/oauth2/token
clientID: orders
credential: {clientSecret: {name: orders-credential}}
`), &spec); err != nil {
		t.Fatal(err)
	}
	st := v1.IssuerStatus{ObservedGeneration: 1, TokenRequests: requests, Conditions: []metav1.Condition{{
		Type: v1.ConditionReady, Status: ready, Reason: reason, Message: message, LastTransitionTime: metav1.Now(),
	}}}
	if ns == "" {
		ci := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}}
		ci.Spec.IssuerSpec = spec
		k8s.MustCreate(t, ci)
		ci.Status = st
		if err := k8s.Status().Update(ctx, ci); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), ci) })
		return
	}
	ti := &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	ti.Spec.IssuerSpec = spec
	k8s.MustCreate(t, ti)
	ti.Status = st
	if err := k8s.Status().Update(ctx, ti); err != nil {
		t.Fatal(err)
	}
}

func TestIssuers(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ns, elsewhere := k8s.NewNamespace(t), k8s.NewNamespace(t)
	newIssuer(t, ns, "team-okta", metav1.ConditionTrue, v1.ReasonIssuerChecked, "the configuration and the credential can be used", 2)
	newIssuer(t, ns, "broken", metav1.ConditionFalse, v1.ReasonCredentialNotFound, `Secret "orders-credential" not found`, 1)
	newIssuer(t, elsewhere, "other-team", metav1.ConditionTrue, v1.ReasonIssuerChecked, "ok", 0)
	cluster := "corp-" + ns
	newIssuer(t, "", cluster, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed, "the allowed-issuers annotation does not name login.example.com", 5)

	out, err := execute(t, now, "issuers", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("issuers:\n%s", out)
	mustContainInOrder(t, out, "KIND", "NAMESPACE", "NAME", "READY", "REASON", "TOKENREQUESTS", "AGE", "MESSAGE",
		"TokenIssuer", ns, "broken", "False", v1.ReasonCredentialNotFound, "1", `Secret "orders-credential" not found`,
		"TokenIssuer", ns, "team-okta", "True", v1.ReasonIssuerChecked, "2")
	mustContainInOrder(t, out, "ClusterTokenIssuer", "-", cluster, "False", v1.ReasonCredentialNotAllowed, "5", "does not name login.example.com")
	if strings.Contains(out, "other-team") || strings.Contains(out, "can be used") {
		t.Errorf("issuers -n printed another namespace's issuer or a Ready issuer's message:\n%s", out)
	}

	if out, err = execute(t, now, "issuers", "-A", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []issuerRow }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("issuers -o json: %v\n%s", err, out)
	}
	found := map[string]issuerRow{}
	for _, r := range list.Items {
		found[r.Kind+"/"+r.Namespace+"/"+r.Name] = r
	}
	if r := found["TokenIssuer/"+elsewhere+"/other-team"]; r.Ready != "True" {
		t.Errorf("issuers -A -o json lacks %s/other-team: %s", elsewhere, out)
	}
	if r := found["ClusterTokenIssuer//"+cluster]; r.Ready != "False" || r.Reason != v1.ReasonCredentialNotAllowed || r.TokenRequests != 5 {
		t.Errorf("issuers -A -o json: %s is %+v", cluster, r)
	}

	// A namespace editor who may list TokenIssuers but not ClusterTokenIssuers.
	k8s.MustCreate(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"tokenissuers"}, Verbs: []string{"list"}}}})
	k8s.MustCreate(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "issuer-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "tenant"}}})
	var stderr string
	out, stderr, err = executeStderr(t, now, "issuers", "-n", ns, "--as", "tenant")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "team-okta") || strings.Contains(out, cluster) || !strings.Contains(stderr, "ClusterTokenIssuers: not allowed to list them") {
		t.Errorf("issuers as a tenant printed:\n%s\nstderr %q", out, stderr)
	}
}
