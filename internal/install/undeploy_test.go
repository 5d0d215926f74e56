package install_test

import (
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestUndeployKeepsCRDsAndNamespace: make undeploy deletes everything
// config/default installs except the CRDs (deleting one deletes every
// TokenRequest or issuer, and the token Secrets they own) and the namespace
// (which holds the ClusterTokenIssuers' credentials).
func TestUndeployKeepsCRDsAndNamespace(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := exec.Command("make", "-s", "-n", "-C", root, "undeploy").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n undeploy: %v\n%s", err, plan)
	}
	if strings.TrimSpace(string(plan)) != "kubectl delete --ignore-not-found -k config/undeploy" {
		t.Errorf("make undeploy runs %q, want it to delete config/undeploy", plan)
	}

	key := func(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }
	installed := map[string]bool{}
	for _, u := range kustomize(t, filesys.MakeFsOnDisk(), repoPath("config", "default")) {
		installed[key(u.GetKind(), u.GetNamespace(), u.GetName())] = true
	}
	deleted := map[string]bool{}
	for _, u := range kustomize(t, filesys.MakeFsOnDisk(), repoPath("config", "undeploy")) {
		k := key(u.GetKind(), u.GetNamespace(), u.GetName())
		if !installed[k] {
			t.Errorf("undeploy deletes %s, which config/default does not install", k)
		}
		deleted[k] = true
	}
	var kept []string
	for k := range installed {
		if !deleted[k] {
			kept = append(kept, k)
		}
	}
	sort.Strings(kept)
	want := []string{
		key("CustomResourceDefinition", "", "clustertokenissuers.tokens.token-operator.io"),
		key("CustomResourceDefinition", "", "tokenissuers.tokens.token-operator.io"),
		key("CustomResourceDefinition", "", "tokenrequests.tokens.token-operator.io"),
		key("Namespace", "", kustomizeNamespace),
	}
	if strings.Join(kept, "\n") != strings.Join(want, "\n") {
		t.Errorf("undeploy keeps\n%s\nwant it to keep exactly\n%s", strings.Join(kept, "\n"), strings.Join(want, "\n"))
	}
	for _, k := range []string{key("Deployment", kustomizeNamespace, "token-operator-controller-manager"), key("ClusterRoleBinding", "", "token-operator-manager-rolebinding")} {
		if !deleted[k] {
			t.Errorf("undeploy leaves %s", k)
		}
	}
}
