package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// WatchAuthConfig keeps a's configuration in step with the API server's
// extension-apiserver-authentication configmap (a front-proxy CA rotation
// reaches the gateway without a restart), until ctx ends. It returns once
// the informer has synced; a configmap that is missing or lacks the front
// proxy's settings leaves a refusing every request, and is logged.
func WatchAuthConfig(ctx context.Context, cs kubernetes.Interface, a *Authenticator, log logr.Logger) error {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithNamespace(AuthConfigMapNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", AuthConfigMapName).String()
		}))
	inf := f.Core().V1().ConfigMaps().Informer()
	apply := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok || cm.Name != AuthConfigMapName {
			return
		}
		cfg, err := ConfigFromConfigMap(cm)
		if err != nil {
			log.Error(err, "refusing every request until the front-proxy configuration is usable")
			a.Set(nil)
			return
		}
		a.Set(cfg)
		log.Info("read the front-proxy configuration", "allowedNames", cfg.AllowedNames, "usernameHeaders", cfg.UsernameHeaders, "groupHeaders", cfg.GroupHeaders)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    apply,
		UpdateFunc: func(_, obj any) { apply(obj) },
		DeleteFunc: func(any) {
			log.Error(nil, "the front-proxy configuration was deleted; refusing every request")
			a.Set(nil)
		},
	}); err != nil {
		return fmt.Errorf("watching %s/%s: %w", AuthConfigMapNamespace, AuthConfigMapName, err)
	}
	f.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		return fmt.Errorf("reading %s/%s: the informer did not sync (does the gateway's ServiceAccount have the extension-apiserver-authentication-reader Role?)", AuthConfigMapNamespace, AuthConfigMapName)
	}
	if !a.Ready() {
		log.Error(nil, "no usable front-proxy configuration: the API server needs --requestheader-client-ca-file and --requestheader-username-headers", "configmap", AuthConfigMapNamespace+"/"+AuthConfigMapName)
	}
	return nil
}
