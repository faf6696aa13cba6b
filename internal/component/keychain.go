package component

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// registryAuth is one registry's credentials from a pull secret.
type registryAuth struct {
	// host is the registry host (and port), lower case, maybe with a
	// leading "*." label glob; path an optional repository prefix.
	host, path string
	cfg        authn.AuthConfig
}

// dockerAuthEntry is one entry of a .dockerconfigjson's auths.
type dockerAuthEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// parsePullSecret reads the registry credentials of an image pull Secret:
// type kubernetes.io/dockerconfigjson (.dockerconfigjson) or
// kubernetes.io/dockercfg (.dockercfg). Errors never quote the Secret's
// content.
func parsePullSecret(s *corev1.Secret) ([]registryAuth, error) {
	var auths map[string]dockerAuthEntry
	switch {
	case len(s.Data[corev1.DockerConfigJsonKey]) > 0:
		var cfg struct {
			Auths map[string]dockerAuthEntry `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("Secret %s: %s is not a docker config.json (%s)", s.Name, corev1.DockerConfigJsonKey, jsonErrorKind(err))
		}
		auths = cfg.Auths
	case len(s.Data[corev1.DockerConfigKey]) > 0:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
			return nil, fmt.Errorf("Secret %s: %s is not a docker config (%s)", s.Name, corev1.DockerConfigKey, jsonErrorKind(err))
		}
	default:
		return nil, fmt.Errorf("Secret %s holds neither %s nor %s: an image pull secret must be of type %s",
			s.Name, corev1.DockerConfigJsonKey, corev1.DockerConfigKey, corev1.SecretTypeDockerConfigJson)
	}
	out := make([]registryAuth, 0, len(auths))
	for key, e := range auths {
		host, path := splitRegistryKey(key)
		if host == "" {
			continue
		}
		cfg := authn.AuthConfig{Username: e.Username, Password: e.Password,
			IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" && cfg.Username == "" && cfg.Password == "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("Secret %s: the auth of registry %s is not base64", s.Name, host)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("Secret %s: the auth of registry %s is not user:password", s.Name, host)
			}
			cfg.Username, cfg.Password = user, pass
		}
		out = append(out, registryAuth{host: host, path: path, cfg: cfg})
	}
	return out, nil
}

// jsonErrorKind names a JSON error without quoting the input (a syntax
// error message can hold a piece of it).
func jsonErrorKind(err error) string {
	var syntax *json.SyntaxError
	var shape *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "invalid JSON"
	case errors.As(err, &shape):
		return "unexpected JSON shape"
	}
	return "unreadable"
}

// splitRegistryKey turns a docker config key ("https://index.docker.io/v1/",
// "registry.example:5000", "*.example.com/team") into a host and a path.
func splitRegistryKey(key string) (host, path string) {
	k := strings.TrimSpace(strings.ToLower(key))
	k = strings.TrimPrefix(k, "https://")
	k = strings.TrimPrefix(k, "http://")
	host, path, _ = strings.Cut(k, "/")
	path = strings.Trim(path, "/")
	if path == "v1" || path == "v2" {
		path = ""
	}
	return canonicalRegistry(host), path
}

// canonicalRegistry folds Docker Hub's many names into one.
func canonicalRegistry(host string) string {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "index.docker.io"
	}
	return host
}

// matchHost reports whether host matches pattern, whose labels may be "*"
// (one label each), as kubelet matches pull secret keys.
func matchHost(pattern, host string) bool {
	if pattern == host {
		return true
	}
	if !strings.Contains(pattern, "*") {
		return false
	}
	pHost, pPort, _ := strings.Cut(pattern, ":")
	hHost, hPort, _ := strings.Cut(host, ":")
	if pPort != hPort {
		return false
	}
	pl, hl := strings.Split(pHost, "."), strings.Split(hHost, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

// keychain resolves credentials from pull secrets, most specific entry
// first; it falls back to anonymous access.
type keychain struct{ auths []registryAuth }

func newKeychain(auths []registryAuth) *keychain {
	// Most specific first: exact hosts before globs, longer paths first.
	sort.SliceStable(auths, func(i, j int) bool {
		gi, gj := strings.Contains(auths[i].host, "*"), strings.Contains(auths[j].host, "*")
		if gi != gj {
			return !gi
		}
		return len(auths[i].path) > len(auths[j].path)
	})
	return &keychain{auths: auths}
}

// Resolve implements authn.Keychain.
func (k *keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := canonicalRegistry(strings.ToLower(r.RegistryStr()))
	repo := strings.ToLower(r.String())
	if i := strings.IndexByte(repo, '/'); i >= 0 {
		repo = repo[i+1:]
	} else {
		repo = ""
	}
	for _, a := range k.auths {
		if !matchHost(a.host, host) {
			continue
		}
		if a.path != "" && repo != a.path && !strings.HasPrefix(repo, a.path+"/") {
			continue
		}
		return authn.FromConfig(a.cfg), nil
	}
	return authn.Anonymous, nil
}
