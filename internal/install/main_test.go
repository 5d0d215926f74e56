package install_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/token-operator/token-operator/internal/testing/testenv"
)

var (
	// k8s talks to the test API server; warnings collects what it warns about.
	k8s      client.Client
	warnings = &warningCollector{}
	// testEnv is the API server, for tests that need a kubeconfig.
	testEnv *testenv.Env
)

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testEnv = env
	code := func() int {
		cfg := rest.CopyConfig(env.Config)
		cfg.WarningHandler = nil
		cfg.WarningHandlerWithContext = warnings
		k8s, err = client.New(cfg, client.Options{Scheme: env.Scheme})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := installMonitoringCRDs(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "installing the Prometheus Operator CRDs:", err)
			return 1
		}
		return m.Run()
	}()
	_ = env.Stop()
	os.Exit(code)
}
