package cmdutil

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
)

// NewLogger is the logr logger of the flags --log-level (debug, info or
// error) and --log-format (json or text), writing to w.
func NewLogger(level, format string, w io.Writer) (logr.Logger, error) {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "error":
		l = slog.LevelError
	default:
		return logr.Logger{}, fmt.Errorf("--log-level %q: want debug, info or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return logr.FromSlogHandler(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return logr.FromSlogHandler(slog.NewTextHandler(w, opts)), nil
	}
	return logr.Logger{}, fmt.Errorf("--log-format %q: want json or text", format)
}

// RESTConfig connects to the API server: through the file of --kubeconfig
// when it is set, else in-cluster, else through the usual kubeconfig
// (KUBECONFIG, ~/.kube/config).
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("connecting to the API server: reading --kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return cfg, nil
}
