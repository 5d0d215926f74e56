package install_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// grant is one verb on one resource of one API group.
type grant struct{ group, resource, verb string }

func (g grant) String() string { return fmt.Sprintf("%s/%s:%s", g.group, g.resource, g.verb) }

func grants(rules ...[]rbacv1.PolicyRule) map[grant]bool {
	out := map[grant]bool{}
	for _, rs := range rules {
		for _, r := range rs {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						out[grant{g, res, v}] = true
					}
				}
			}
		}
	}
	return out
}

func sortedGrants(m map[grant]bool) []string {
	var s []string
	for g := range m {
		s = append(s, g.String())
	}
	slices.Sort(s)
	return s
}

// without is the generated grants minus the ones a switched-off feature needs.
func without(t *testing.T, drop ...grant) map[grant]bool {
	want := grants(generatedManagerRules(t))
	for _, g := range drop {
		if !want[g] {
			t.Fatalf("config/rbac/role.yaml does not grant %s", g)
		}
		delete(want, g)
	}
	return want
}

var (
	saTokenGrant   = grant{"", "serviceaccounts/token", "create"}
	restartGrants  = []grant{{"apps", "deployments", "patch"}, {"apps", "statefulsets", "patch"}, {"apps", "daemonsets", "patch"}}
	namespacedOnly = []string{"secrets", "serviceaccounts", "serviceaccounts/token", "deployments", "statefulsets", "daemonsets", "tokenrequests", "tokenissuers"}
)

// managerRoles returns the manager's ClusterRole rules and, by namespace,
// its Roles' rules, checking that each is bound to the manager's account.
func managerRoles(t *testing.T, objs []*unstructured.Unstructured, clusterRole, clusterBinding, prefix, saName, saNamespace string) ([]rbacv1.PolicyRule, map[string][]rbacv1.PolicyRule) {
	t.Helper()
	sa := []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName, Namespace: saNamespace}}
	cr := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", clusterRole))
	crb := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", clusterBinding))
	if crb.RoleRef.Name != cr.Name || !reflect.DeepEqual(crb.Subjects, sa) {
		t.Errorf("ClusterRoleBinding %s: %+v", crb.Name, crb)
	}
	roles := map[string][]rbacv1.PolicyRule{}
	for _, u := range ofKind(objs, "Role") {
		if !strings.HasPrefix(u.GetName(), prefix) {
			continue
		}
		role := convert[rbacv1.Role](t, u)
		roles[role.Namespace+"/"+role.Name] = role.Rules
		bound := false
		for _, b := range ofKind(objs, "RoleBinding") {
			rb := convert[rbacv1.RoleBinding](t, b)
			if rb.Namespace == role.Namespace && rb.RoleRef.Kind == "Role" && rb.RoleRef.Name == role.Name {
				bound = reflect.DeepEqual(rb.Subjects, sa)
			}
		}
		if !bound {
			t.Errorf("Role %s/%s is not bound to the manager's service account alone", role.Namespace, role.Name)
		}
	}
	return cr.Rules, roles
}

// checkScoped asserts a scoped install: the ClusterRole grants nothing
// namespaced, each watched namespace's Role plus the ClusterRole is the
// generated role (less what switched-off features need), and the cluster
// resource namespace's Role only reads credentials (and mints tokens).
func checkScoped(t *testing.T, source string, clusterRules []rbacv1.PolicyRule, roles map[string][]rbacv1.PolicyRule, watched []string, credentialsRole string, drop ...grant) {
	t.Helper()
	for g := range grants(clusterRules) {
		if slices.Contains(namespacedOnly, g.resource) {
			t.Errorf("%s: the ClusterRole grants %s in every namespace", source, g)
		}
	}
	want := without(t, drop...)
	for _, ns := range watched {
		key := ""
		for k := range roles {
			if strings.HasPrefix(k, ns+"/") && k != credentialsRole {
				key = k
			}
		}
		if key == "" {
			t.Errorf("%s: no manager Role in namespace %s (have %v)", source, ns, slices.Sorted(maps.Keys(roles)))
			continue
		}
		if got := grants(clusterRules, roles[key]); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ClusterRole plus Role %s:\n got %v\nwant %v", source, key, sortedGrants(got), sortedGrants(want))
		}
	}
	wantCred := map[grant]bool{}
	for _, r := range []string{"secrets", "serviceaccounts"} {
		for _, v := range []string{"get", "list", "watch"} {
			wantCred[grant{"", r, v}] = true
		}
	}
	if want[saTokenGrant] {
		wantCred[saTokenGrant] = true
	}
	if got := grants(roles[credentialsRole]); !reflect.DeepEqual(got, wantCred) {
		t.Errorf("%s: Role %s: got %v, want %v", source, credentialsRole, sortedGrants(got), sortedGrants(wantCred))
	}
}

func TestChartScopedRBAC(t *testing.T) {
	const ns = "tokens-scoped"
	watched := []string{"team-a", "team-b"}
	for _, tc := range []struct {
		name   string
		values map[string]any
		drop   []grant
		flags  []string
	}{
		{name: "all features"},
		{name: "no service account credentials", values: map[string]any{"enableServiceAccountCredentials": false},
			drop: []grant{saTokenGrant}, flags: []string{"--enable-service-account-credentials=false"}},
		{name: "no rollout restarts", values: map[string]any{"enableRolloutRestarts": false},
			drop: restartGrants, flags: []string{"--enable-rollout-restarts=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]any{"watchNamespaces": []any{"team-a", "team-b"}}
			maps.Copy(values, tc.values)
			r := renderChart(t, "tokens", ns, values)
			ensureNamespace(t, ns, restricted)
			applyDryRun(t, "scoped chart", r.objects, ns)
			cluster, roles := managerRoles(t, r.objects, "tokens-token-operator-manager", "tokens-token-operator-manager", "tokens-token-operator-manager", "tokens-token-operator", ns)
			checkScoped(t, "chart", cluster, roles, watched, ns+"/tokens-token-operator-manager-cluster-credentials", tc.drop...)
			if len(roles) != 3 {
				t.Errorf("want a Role in each watched namespace and one for the credentials, got %v", slices.Sorted(maps.Keys(roles)))
			}
			_, c := chartDeployment(t, r, "tokens-token-operator")
			checkArgsAreFlags(t, "scoped chart", c.Args)
			containsAll(t, "scoped chart", c.Args, append([]string{"--namespace=team-a", "--namespace=team-b", "--cluster-resource-namespace=" + ns}, tc.flags...)...)
			if len(tc.flags) == 0 {
				containsNone(t, "scoped chart", c.Args, "--enable-service-account-credentials", "--enable-rollout-restarts")
			}
		})
	}
}

// TestChartClusterWideSwitches: without watchNamespaces the switches drop
// their rules from the one ClusterRole and pass their flags.
func TestChartClusterWideSwitches(t *testing.T) {
	r := renderChart(t, "tokens", "tokens-wide", map[string]any{"enableServiceAccountCredentials": false, "enableRolloutRestarts": false})
	cluster, roles := managerRoles(t, r.objects, "tokens-token-operator-manager", "tokens-token-operator-manager", "tokens-token-operator-manager", "tokens-token-operator", "tokens-wide")
	if len(roles) != 0 {
		t.Errorf("Roles in a cluster-wide install: %v", slices.Sorted(maps.Keys(roles)))
	}
	if got, want := grants(cluster), without(t, append([]grant{saTokenGrant}, restartGrants...)...); !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole:\n got %v\nwant %v", sortedGrants(got), sortedGrants(want))
	}
	_, c := chartDeployment(t, r, "tokens-token-operator")
	containsAll(t, "chart", c.Args, "--enable-service-account-credentials=false", "--enable-rollout-restarts=false")
}

// TestKustomizeScoped builds config/scoped: the same split as the chart's,
// for the one watched namespace it names.
func TestKustomizeScoped(t *testing.T) {
	objs := kustomize(t, filesys.MakeFsOnDisk(), repoPath("config", "scoped"))
	applyDryRun(t, "kustomize config/scoped", objs, "default")
	cluster, roles := managerRoles(t, objs, "token-operator-manager-role", "token-operator-manager-rolebinding", "token-operator-manager", "token-operator-controller-manager", kustomizeNamespace)
	checkScoped(t, "kustomize", cluster, roles, []string{"tenant-a"}, kustomizeNamespace+"/token-operator-manager-cluster-credentials")
	if len(roles) != 2 {
		t.Errorf("want the tenant-a Role and the credentials Role, got %v", slices.Sorted(maps.Keys(roles)))
	}
	for _, u := range ofKind(objs, "ClusterRole") {
		if strings.HasPrefix(u.GetName(), "token-operator-manager") && u.GetName() != "token-operator-manager-role" {
			t.Errorf("another manager ClusterRole: %s", u.GetName())
		}
	}
	r := renderChart(t, "token-operator", kustomizeNamespace, map[string]any{"watchNamespaces": []any{"tenant-a"}})
	chartCluster, chartRoles := managerRoles(t, r.objects, "token-operator-manager", "token-operator-manager", "token-operator-manager", "token-operator", kustomizeNamespace)
	if !reflect.DeepEqual(cluster, chartCluster) || !reflect.DeepEqual(roles, chartRoles) {
		t.Errorf("config/scoped and the scoped chart differ:\nkustomize %+v %+v\nchart %+v %+v", cluster, roles, chartCluster, chartRoles)
	}
	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "token-operator-controller-manager"))
	containsAll(t, "kustomize config/scoped", d.Spec.Template.Spec.Containers[0].Args, "--namespace=tenant-a")
}
