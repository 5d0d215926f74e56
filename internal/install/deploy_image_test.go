package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestDeployUsesIMG checks that make deploy applies the generated
// kustomization that sets the manager image to IMG, in every IMG form.
func TestDeployUsesIMG(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := exec.Command("make", "-s", "-n", "-C", root, "deploy", "IMG=registry.example.com/token-operator:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n deploy: %v\n%s", err, plan)
	}
	if !strings.Contains(string(plan), "kubectl apply --server-side -k dist/installer") {
		t.Errorf("make deploy does not apply dist/installer:\n%s", plan)
	}
	for img, want := range map[string][]string{
		"registry.example.com/token-operator:v1":   {"newName: registry.example.com/token-operator", "newTag: v1"},
		"localhost:5000/token-operator":            {"newName: localhost:5000/token-operator", "newTag: latest"},
		"ghcr.io/x/token-operator@sha256:0123abcd": {"newName: ghcr.io/x/token-operator", "digest: sha256:0123abcd"},
	} {
		script, err := exec.Command("make", "-s", "-n", "-C", root, "kustomization-img", "IMG="+img).Output()
		if err != nil {
			t.Fatalf("make -n kustomization-img: %v", err)
		}
		dir := t.TempDir()
		run := exec.Command("sh", "-e")
		run.Dir = dir
		run.Stdin = strings.NewReader(string(script))
		if out, err := run.CombinedOutput(); err != nil {
			t.Fatalf("running %s: %v\n%s", script, err, out)
		}
		got, err := os.ReadFile(filepath.Join(dir, "dist/installer/kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(got), w) {
				t.Errorf("IMG=%s: kustomization lacks %q:\n%s", img, w, got)
			}
		}
		if !strings.Contains(string(got), "- ../../config/default") {
			t.Errorf("IMG=%s: kustomization does not build on config/default:\n%s", img, got)
		}
	}
}

// TestLocalClusterImage: the image make docker-build builds by default is the
// one config/default deploys, with pull policy IfNotPresent, so an image
// loaded into a local cluster (kind load docker-image, minikube image load)
// starts without a registry.
func TestLocalClusterImage(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const want = "token-operator:dev"
	build, err := exec.Command("make", "-s", "-n", "-C", root, "docker-build").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n docker-build: %v\n%s", err, build)
	}
	if !strings.Contains(string(build), " -t "+want+" ") {
		t.Errorf("make docker-build does not build %s by default:\n%s", want, build)
	}
	script, err := exec.Command("make", "-s", "-n", "-C", root, "kustomization-img").Output()
	if err != nil {
		t.Fatalf("make -n kustomization-img: %v", err)
	}
	dir := t.TempDir()
	run := exec.Command("sh", "-e")
	run.Dir = dir
	run.Stdin = strings.NewReader(string(script))
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("running %s: %v\n%s", script, err, out)
	}
	kust, err := os.ReadFile(filepath.Join(dir, "dist/installer/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kust), "newName: token-operator\n") || !strings.Contains(string(kust), "newTag: dev\n") {
		t.Errorf("make deploy does not deploy %s by default:\n%s", want, kust)
	}

	objs := kustomize(t, filesys.MakeFsOnDisk(), repoPath("config", "default"))
	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "token-operator-controller-manager"))
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != want || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("config/default runs image %q with pull policy %q, want %q with IfNotPresent", c.Image, c.ImagePullPolicy, want)
	}
}
