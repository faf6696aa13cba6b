package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func authConfigMap(caPEM []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: AuthConfigMapNamespace, Name: AuthConfigMapName},
		Data: map[string]string{
			keyClientCA:       string(caPEM),
			keyAllowedNames:   `["front-proxy-client"]`,
			keyUsernameHeader: `["X-Remote-User"]`,
			keyGroupHeaders:   `["X-Remote-Group"]`,
			keyExtraPrefixes:  `["X-Remote-Extra-"]`,
		},
	}
}

func TestAuthenticate(t *testing.T) {
	ca := newTestCA(t, "front-proxy-ca")
	other := newTestCA(t, "other-ca")
	_, proxy, _, _ := ca.issue(t, "front-proxy-client", true, nil, nil)
	_, wrongCN, _, _ := ca.issue(t, "someone-else", true, nil, nil)
	_, serverOnly, _, _ := ca.issue(t, "front-proxy-client", false, nil, nil)
	_, foreign, _, _ := other.issue(t, "front-proxy-client", true, nil, nil)
	cfg, err := ConfigFromConfigMap(authConfigMap(ca.pem))
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string][]string{
		"X-Remote-User":  {"system:serviceaccount:team-a:caller"},
		"X-Remote-Group": {"system:serviceaccounts", "system:authenticated"},
		"X-Remote-Extra-Authentication.kubernetes.io%2fpod-Name": {"p-1"},
	}
	tests := map[string]struct {
		unconfigured bool
		certs        []*x509.Certificate
		noTLS        bool
		headers      map[string][]string
		wantReason   string
		want         User
	}{
		"front proxy": {certs: []*x509.Certificate{proxy}, headers: headers, want: User{
			Name: "system:serviceaccount:team-a:caller", Groups: []string{"system:serviceaccounts", "system:authenticated"},
			Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"p-1"}},
		}},
		"not configured":    {unconfigured: true, certs: []*x509.Certificate{proxy}, headers: headers, wantReason: "NotConfigured"},
		"plain http":        {noTLS: true, headers: headers, wantReason: "NoClientCert"},
		"no client cert":    {headers: headers, wantReason: "NoClientCert"},
		"another CA":        {certs: []*x509.Certificate{foreign}, headers: headers, wantReason: "UntrustedClientCert"},
		"server cert":       {certs: []*x509.Certificate{serverOnly}, headers: headers, wantReason: "UntrustedClientCert"},
		"CN not allowed":    {certs: []*x509.Certificate{wrongCN}, headers: headers, wantReason: "NameNotAllowed"},
		"missing user":      {certs: []*x509.Certificate{proxy}, headers: map[string][]string{"X-Remote-Group": {"g"}}, wantReason: "NoUser"},
		"user header spoof": {certs: []*x509.Certificate{foreign}, headers: map[string][]string{"X-Remote-User": {"admin"}}, wantReason: "UntrustedClientCert"},
		"user, no groups":   {certs: []*x509.Certificate{proxy}, headers: map[string][]string{"X-Remote-User": {"alice"}}, want: User{Name: "alice"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := NewAuthenticator()
			if !tc.unconfigured {
				a.Set(cfg)
			}
			r := httptest.NewRequest(http.MethodPost, "/x", nil)
			if tc.noTLS {
				r.TLS = nil
			} else {
				r.TLS = &tls.ConnectionState{PeerCertificates: tc.certs}
			}
			for k, v := range tc.headers {
				r.Header[http.CanonicalHeaderKey(k)] = v
			}
			// Twice: the second goes through the cache of verified certificates.
			for range 2 {
				u, err := a.Authenticate(r)
				if tc.wantReason != "" {
					var ae *AuthError
					if !errors.As(err, &ae) || ae.Reason != tc.wantReason {
						t.Fatalf("err = %v, want an AuthError %s", err, tc.wantReason)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(u, tc.want) {
					t.Fatalf("user = %+v, want %+v", u, tc.want)
				}
			}
		})
	}
}

func TestConfigFromConfigMap(t *testing.T) {
	ca := newTestCA(t, "ca")
	tests := map[string]struct {
		mutate  func(*corev1.ConfigMap)
		wantErr bool
	}{
		"complete":           {mutate: func(*corev1.ConfigMap) {}},
		"no front proxy":     {mutate: func(cm *corev1.ConfigMap) { delete(cm.Data, keyClientCA) }, wantErr: true},
		"garbage CA":         {mutate: func(cm *corev1.ConfigMap) { cm.Data[keyClientCA] = "nope" }, wantErr: true},
		"names not JSON":     {mutate: func(cm *corev1.ConfigMap) { cm.Data[keyAllowedNames] = "front-proxy-client" }, wantErr: true},
		"no username header": {mutate: func(cm *corev1.ConfigMap) { delete(cm.Data, keyUsernameHeader) }, wantErr: true},
		"any name allowed":   {mutate: func(cm *corev1.ConfigMap) { cm.Data[keyAllowedNames] = "[]" }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cm := authConfigMap(ca.pem)
			tc.mutate(cm)
			_, err := ConfigFromConfigMap(cm)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestSender(t *testing.T) {
	for name, want := range map[string]string{
		"system:serviceaccount:team-a:caller": "serviceaccount:team-a:caller",
		"alice@example.com":                   "user:alice@example.com",
		"system:serviceaccount:broken":        "user:system:serviceaccount:broken",
		"system:admin":                        "user:system:admin",
	} {
		if got := (User{Name: name}).Sender(); got != want {
			t.Errorf("Sender(%q) = %q, want %q", name, got, want)
		}
	}
}
