package install_test

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestProjectListsEveryKind: kubebuilder's PROJECT lists each CRD of
// config/crd/bases with its scope and its controller, so that kubebuilder
// commands (create webhook, alpha generate) see every kind.
func TestProjectListsEveryKind(t *testing.T) {
	var project struct {
		Resources []struct {
			API struct {
				Namespaced bool `json:"namespaced"`
			} `json:"api"`
			Controller bool   `json:"controller"`
			Group      string `json:"group"`
			Domain     string `json:"domain"`
			Kind       string `json:"kind"`
			Version    string `json:"version"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "PROJECT")), &project); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(repoPath("config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Scope    string `json:"scope"`
				Versions []struct {
					Name string `json:"name"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatal(err)
		}
		kind := crd.Spec.Names.Kind
		found := false
		for _, r := range project.Resources {
			if r.Kind != kind {
				continue
			}
			found = true
			if r.Group+"."+r.Domain != crd.Spec.Group || r.Version != crd.Spec.Versions[0].Name {
				t.Errorf("PROJECT: %s is %s.%s/%s, the CRD %s/%s", kind, r.Group, r.Domain, r.Version, crd.Spec.Group, crd.Spec.Versions[0].Name)
			}
			if r.API.Namespaced != (crd.Spec.Scope == "Namespaced") {
				t.Errorf("PROJECT: %s namespaced: %v, the CRD's scope is %s", kind, r.API.Namespaced, crd.Spec.Scope)
			}
			if !r.Controller {
				t.Errorf("PROJECT: %s without controller: true; the operator reconciles it", kind)
			}
		}
		if !found {
			t.Errorf("PROJECT does not list %s", kind)
		}
	}
}
