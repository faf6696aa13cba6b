package placement

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkPick places one actor among n hosts, a quarter of them on nodes
// its nodeSelector rejects and a quarter tainted: the controller's cost per
// placement beyond reading the cache.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			hosts := make([]Host, n)
			for i := range hosts {
				h := live(fmt.Sprintf("host-%04d", i), i%50)
				h.Capacity = 1000
				h.NodeLabels = map[string]string{"pool": "general", "zone": fmt.Sprintf("z%d", i%3)}
				switch i % 4 {
				case 1:
					h.NodeLabels = map[string]string{"pool": "batch"}
				case 2:
					h.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
				}
				hosts[i] = h
			}
			req := Request{
				NodeSelector: map[string]string{"pool": "general"},
				Tolerations:  []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpExists}},
			}
			at := now.Add(time.Second)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Pick(hosts, req, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
