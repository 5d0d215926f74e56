// Command kubectl-token_operator is a kubectl plugin for token-operator,
// run as `kubectl token-operator`: status shows a TokenRequest's
// conditions, token times, last failure and events without ever reading
// the token; renew asks the operator for a new token now; issuers shows
// whether TokenIssuers and ClusterTokenIssuers can be used; version prints
// the plugin's build identity.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/version"
)

func main() {
	if err := newRootCommand(os.Stdout, os.Stderr, time.Now).Execute(); err != nil {
		os.Exit(1)
	}
}

// newRootCommand builds the plugin's commands, writing to out and errOut
// and taking the current time from now.
func newRootCommand(out, errOut io.Writer, now func() time.Time) *cobra.Command {
	kube := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:          "kubectl-token_operator",
		Short:        "Inspect and renew token-operator TokenRequests",
		Annotations:  map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl token-operator"},
		SilenceUsage: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetOut(out)
	root.SetErr(errOut)
	kube.AddFlags(root.PersistentFlags())

	// connect returns a client of the cluster and the namespace the flags
	// and kubeconfig name.
	connect := func() (client.Client, string, error) {
		cfg, err := kube.ToRESTConfig()
		if err != nil {
			return nil, "", err
		}
		ns, _, err := kube.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, "", err
		}
		scheme := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			return nil, "", err
		}
		if err := v1.AddToScheme(scheme); err != nil {
			return nil, "", err
		}
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		return c, ns, err
	}

	var allNamespaces bool
	var output string
	status := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show a TokenRequest's conditions, token times, last failure and events, or list the TokenRequests",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, ns, err := connect()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				if allNamespaces {
					ns = ""
				}
				if output != "" {
					return printTableReport(cmd.Context(), c, out, output, ns)
				}
				return printTable(cmd.Context(), c, out, ns, now())
			}
			if allNamespaces {
				return fmt.Errorf("status NAME takes a namespace (-n), not --all-namespaces")
			}
			if output != "" {
				return printStatusReport(cmd.Context(), c, out, output, ns, args[0])
			}
			return printStatus(cmd.Context(), c, out, ns, args[0], now())
		},
	}
	status.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List the TokenRequests of all namespaces.")
	status.Flags().StringVarP(&output, "output", "o", "", "Print json or yaml instead of text.")

	var all, renewAllNamespaces bool
	var selector string
	renewCmd := &cobra.Command{
		Use:   "renew NAME... | --all | -A | -l SELECTOR",
		Short: "Ask the operator for a new token now, for the named TokenRequests, all in the namespace (--all), in every namespace (-A), or those matching a label selector (-l)",
		RunE: func(cmd *cobra.Command, args []string) error {
			many := all || renewAllNamespaces || selector != ""
			if many == (len(args) > 0) {
				return fmt.Errorf("name one or more TokenRequests, or pass --all, -A or -l")
			}
			c, ns, err := connect()
			if err != nil {
				return err
			}
			if !many {
				return renew(cmd.Context(), c, out, ns, args, now())
			}
			if renewAllNamespaces {
				ns = ""
			}
			return renewMatching(cmd.Context(), c, out, ns, selector, now())
		},
	}
	renewCmd.Flags().BoolVar(&all, "all", false, "Renew every TokenRequest in the namespace.")
	renewCmd.Flags().BoolVarP(&renewAllNamespaces, "all-namespaces", "A", false, "Renew the TokenRequests of all namespaces (with -l: those matching).")
	renewCmd.Flags().StringVarP(&selector, "selector", "l", "", "Renew the TokenRequests whose labels match this selector (e.g. app=orders).")

	var issuersAllNamespaces bool
	var issuersOutput string
	issuersCmd := &cobra.Command{
		Use:   "issuers",
		Short: "List the TokenIssuers of the namespace and the ClusterTokenIssuers: Ready, reason and how many TokenRequests name each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(issuersOutput); err != nil {
				return err
			}
			c, ns, err := connect()
			if err != nil {
				return err
			}
			if issuersAllNamespaces {
				ns = ""
			}
			return printIssuers(cmd.Context(), c, out, errOut, issuersOutput, ns, now())
		},
	}
	issuersCmd.Flags().BoolVarP(&issuersAllNamespaces, "all-namespaces", "A", false, "List the TokenIssuers of all namespaces.")
	issuersCmd.Flags().StringVarP(&issuersOutput, "output", "o", "", "Print json or yaml instead of text.")

	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and build date",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			_, _ = fmt.Fprintln(out, version.Get())
		},
	}

	root.AddCommand(status, renewCmd, issuersCmd, versionCmd)
	return root
}
