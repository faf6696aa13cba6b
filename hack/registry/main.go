// Command registry is the local cluster's OCI registry
// (hack/local-cluster.sh starts it on the node's bridge address): the
// distribution API as go-containerregistry implements it, blobs on disk
// under -dir, manifests in memory (they live as long as the cluster). It
// is what `troupe push` and `troupe deploy --image` write to, and what the
// Troupe host and containerd pull from, over plain HTTP on a private
// address.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("address", "127.0.0.1:5000", "address to listen on")
	dir := flag.String("dir", "", "directory for blobs (default: in memory)")
	flag.Parse()
	opts := []registry.Option{registry.Logger(log.New(os.Stderr, "registry: ", log.LstdFlags))}
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "registry:", err)
			os.Exit(1)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*dir)))
	}
	srv := &http.Server{Addr: *addr, Handler: registry.New(opts...), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("registry: serving the OCI distribution API on http://%s", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}
