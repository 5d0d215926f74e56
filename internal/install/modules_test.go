package install_test

import (
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMakeCoversNestedModules: go vet ./..., golangci-lint run ./... and
// go test ./... in the root skip nested modules, so make vet, lint and test
// run in every module under pkg/, the libraries applications import. (The
// modules under hack/tools only pin the versions of tools the tests build.)
func TestMakeCoversNestedModules(t *testing.T) {
	root := repoPath()
	var nested []string
	err := filepath.WalkDir(repoPath("pkg"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" {
			dir, _ := filepath.Rel(root, filepath.Dir(path))
			nested = append(nested, filepath.ToSlash(dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(nested) == 0 {
		t.Fatal("no module under pkg/: pkg/tokenfile should be one")
	}
	plan, err := exec.Command("make", "-s", "-n", "-C", root, "test").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n test: %v\n%s", err, plan)
	}
	for _, step := range []string{"go vet ./...", "golangci-lint run ./...", "go test -race -count=1 ./..."} {
		var line string
		for _, l := range strings.Split(string(plan), "\n") {
			if strings.HasPrefix(l, "for m in ") && strings.Contains(l, "(cd $m && ") && strings.Contains(l, step) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("make test runs %q in no nested module:\n%s", step, plan)
			continue
		}
		modules := strings.Fields(strings.TrimPrefix(line[:strings.Index(line, ";")], "for m in "))
		for _, m := range nested {
			if !slices.Contains(modules, m) {
				t.Errorf("make test runs %q in %v, not in the module %s", step, modules, m)
			}
		}
	}
}
