// Command argocd is the part of Argo CD that Slipway's GitOps tests run beside the local control
// plane: the repo-server and the application-controller. Like Argo CD's own binary, it picks the
// component from the name it is called by (a symlink) or from ARGOCD_BINARY_NAME. Leaving out
// the API server, the CLI, Dex and the web UI keeps the build shorter and the binary smaller.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func main() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
	// Argo CD's own main turns gRPC's DNS SRV lookups off here (util/grpc.DisableSRVLookups);
	// only its grpclb import turns them on, and neither component here links that: they are
	// off already, and that function would panic seeing so.

	name := filepath.Base(os.Args[0])
	if env := os.Getenv("ARGOCD_BINARY_NAME"); env != "" {
		name = env
	}
	var command *cobra.Command
	switch name {
	case common.CommandRepoServer:
		command = reposerver.NewCommand()
	case common.CommandApplicationController:
		command = appcontroller.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "%s: run me as %s or %s (symlink or ARGOCD_BINARY_NAME)\n",
			name, common.CommandRepoServer, common.CommandApplicationController)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
