// Command demo shows token-operator's main job on one machine, with no
// cluster and no Entra tenant: it starts a local kube-apiserver and etcd
// (envtest), a local HTTPS token server that speaks Microsoft Entra ID's
// protocol, and bin/manager as a separate process; applies a client-secret and
// a certificate TokenRequest with short-lived tokens; and shows the
// TokenRequests and their Secrets while the operator refreshes the tokens.
//
// hack/demo.sh (make demo) runs it. Ctrl-C stops it. With a duration
// (-duration or DEMO_DURATION) it runs unattended and exits 0 only when both
// TokenRequests became Ready and each token was refreshed at least once.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	c := config{Out: os.Stdout}
	flag.StringVar(&c.Root, "root", ".", "Repository root: the CRDs are read from <root>/config/crd/bases.")
	flag.StringVar(&c.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "Folder holding kube-apiserver and etcd (hack/setup-envtest.sh prints it); default $KUBEBUILDER_ASSETS.")
	flag.StringVar(&c.Manager, "manager", filepath.Join("bin", "manager"), "The manager binary (make build).")
	flag.StringVar(&c.WorkDir, "workdir", filepath.Join("bin", "demo"), "Folder for the kubeconfig, the token server's CA and manager.log.")
	flag.DurationVar(&c.Duration, "duration", envDuration("DEMO_DURATION", 0), "Watch this long after applying the TokenRequests, then check the outcome and exit; 0 runs until Ctrl-C. Default $DEMO_DURATION.")
	flag.DurationVar(&c.TokenLifetime, "token-lifetime", envDuration("DEMO_TOKEN_LIFETIME", 60*time.Second), "Lifetime of the tokens the local token server issues (whole seconds). Default $DEMO_TOKEN_LIFETIME or 60s.")
	flag.DurationVar(&c.MinRemaining, "min-remaining-lifetime", envDuration("DEMO_MIN_REMAINING_LIFETIME", 10*time.Second), "The manager's --min-remaining-lifetime.")
	flag.DurationVar(&c.Interval, "interval", envDuration("DEMO_INTERVAL", 5*time.Second), "How often the TokenRequest table is printed.")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
	if res.Interrupted && c.Duration == 0 {
		return // Ctrl-C is how an interactive demo ends
	}
	if !res.OK() {
		os.Exit(1)
	}
}

// envDuration reads a duration from the environment, exiting on a bad value.
func envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q is not a duration such as 90s or 2m\n", name, v)
		os.Exit(2)
	}
	return d
}
