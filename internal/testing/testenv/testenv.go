// Package testenv starts a real kube-apiserver and etcd (envtest) with the
// operator's CRDs installed, for tests in any package.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

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

// Operator identity: the service account the manager runs as in tests,
// bound to exactly the generated roles, as a deployment binds it.
const (
	OperatorNamespace      = "token-operator-system"
	OperatorServiceAccount = "controller-manager"
)

// OperatorConfig returns a configuration that acts as the operator's
// service account, bound to the generated ClusterRole (config/rbac/role.yaml)
// and the leader-election Role, so that a missing or extra verb shows in a
// test. The objects are created once; later calls reuse them.
func (e *Env) OperatorConfig(ctx context.Context) (*rest.Config, error) {
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: OperatorServiceAccount, Namespace: OperatorNamespace}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.Name, Namespace: sa.Namespace}},
	}
	role := &rbacv1.ClusterRole{}
	election := &rbacv1.Role{}
	for path, obj := range map[string]client.Object{"role.yaml": role, "leader_election_role.yaml": election} {
		data, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "rbac", path))
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(data, obj); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	election.Namespace = OperatorNamespace
	objs = append(objs, role, election,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{sa},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: election.Name, Namespace: OperatorNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: election.Name},
			Subjects:   []rbacv1.Subject{sa},
		})
	for _, o := range objs {
		if err := e.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: serviceaccount.MakeUsername(sa.Namespace, sa.Name),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated"},
	}
	return cfg, nil
}

// WriteOperatorKubeconfig writes a kubeconfig into dir that acts as the
// operator's service account (see OperatorConfig), for a manager run as its
// own process.
func (e *Env) WriteOperatorKubeconfig(ctx context.Context, dir string) (string, error) {
	cfg, err := e.OperatorConfig(ctx)
	if err != nil {
		return "", err
	}
	path, err := e.WriteKubeconfig(dir)
	if err != nil {
		return "", err
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", err
	}
	for _, user := range kc.AuthInfos {
		user.Impersonate = cfg.Impersonate.UserName
		user.ImpersonateGroups = cfg.Impersonate.Groups
	}
	for _, c := range kc.Contexts {
		c.Namespace = OperatorNamespace
	}
	return path, clientcmd.WriteToFile(*kc, path)
}
