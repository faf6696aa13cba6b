package dashboard

import (
	"slices"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	tests := map[string]struct {
		expr    string
		want    []string
		wantErr string
	}{
		"selector":           {expr: `troupe_host_actors{job=~"$job"}`, want: []string{"troupe_host_actors"}},
		"rate and sum":       {expr: `sum by (result) (rate(troupe_host_actor_starts_total{job=~"$job"}[$__rate_interval]))`, want: []string{"troupe_host_actor_starts_total"}},
		"histogram":          {expr: `histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))`, want: []string{"x_seconds_bucket"}},
		"binary":             {expr: `a / on(pod) b`, want: []string{"a", "b"}},
		"quantile_over_time": {expr: `quantile_over_time(0.9, a[5m])`, want: []string{"a"}},
		"syntax":             {expr: `sum(rate(a[5m])`, wantErr: "does not parse"},
		"rate without range": {expr: `rate(a)`, wantErr: "needs a range vector"},
		"MetricsQL only":     {expr: `range_median(a)`, wantErr: "not a PromQL function"},
		"unknown variable":   {expr: `a{pod=~"$pod"}`, wantErr: "Grafana variable"},
		"no metric name":     {expr: `{job="x"}`, wantErr: "without a metric name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Metrics(Query{Where: "test", Expr: tc.expr})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("metrics %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFamily(t *testing.T) {
	fams := map[string]bool{"h_seconds": true, "c_total": true, "s_recorded": true}
	for series, want := range map[string]string{"h_seconds_bucket": "h_seconds", "c_total": "c_total", "s_recorded_sum": "s_recorded", "nope_bucket": ""} {
		if got, _ := Family(series, fams); got != want {
			t.Errorf("Family(%q) = %q, want %q", series, got, want)
		}
	}
}
