// Command kubectl is upstream's kubectl, built from the published k8s.io/kubectl module
// at the version scripts/install-kubectl.sh names; this file only calls its entry point.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() { os.Exit(cli.Run(cmd.NewDefaultKubectlCommand())) }
