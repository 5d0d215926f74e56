// Package testenv starts a real kube-apiserver and etcd (envtest) with the
// operator's CRDs installed, for tests in any package.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tokensv1alpha1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
}

// RepoRoot is the repository's top folder, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// NewScheme returns a scheme with the built-in types and the TokenRequest API.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = tokensv1alpha1.AddToScheme(s)
	return s
}

// Start starts kube-apiserver and etcd from KUBEBUILDER_ASSETS (see
// hack/setup-envtest.sh) and installs the CRDs from config/crd/bases.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		assets := filepath.Join(RepoRoot(), "bin", "k8s", "1.37.2")
		if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
			return nil, fmt.Errorf("no API-server binaries: run 'make test' or set KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh)")
		}
		if err := os.Setenv("KUBEBUILDER_ASSETS", assets); err != nil {
			return nil, err
		}
	}
	scheme := NewScheme()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// ServiceAccountSigningCertFile is the PEM file whose key verifies the API
// server's service account tokens.
func (e *Env) ServiceAccountSigningCertFile() string {
	return filepath.Join(e.env.ControlPlane.APIServer.CertDir, "sa-signer.crt")
}

// WriteKubeconfig writes a kubeconfig for an administrator of the control
// plane into dir, for a manager run as its own process.
func (e *Env) WriteKubeconfig(dir string) (string, error) {
	user, err := e.env.AddUser(envtest.User{Name: "token-operator-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}
