// Command pause is the sandbox ("infra") container of the real node's pods: it holds the
// pod's namespaces, reaps orphaned children, and exits on SIGINT or SIGTERM. The local
// control plane has no registry to pull the usual pause image from, so it is built here
// with the kubelet and put in an image of its own (slipway/devcluster/images.py).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("slipway pause\n")
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		if received != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
