package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
)

// Query is one PromQL expression of the dashboard and where it is.
type Query struct {
	// Where names the panel (or variable) and target, for messages.
	Where string
	// Expr is the expression as written, Grafana's variables included.
	Expr string
}

// grafana is the part of a dashboard's JSON that holds queries.
type grafana struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// Load reads a dashboard and returns its queries: every panel target's
// expression, and the metric selector of each label_values variable.
func Load(path string) ([]Query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading dashboard: %w", err)
	}
	var d grafana
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parsing dashboard %s: %w", path, err)
	}
	if d.Title == "" || d.UID == "" {
		return nil, fmt.Errorf("dashboard %s has no title or uid", path)
	}
	var qs []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, t := range p.Targets {
				qs = append(qs, Query{Where: fmt.Sprintf("panel %q target %s", p.Title, t.RefID), Expr: t.Expr})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				return nil, fmt.Errorf("variable %s: query is neither an object nor a string", v.Name)
			}
			q.Query = s
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
		}
		qs = append(qs, Query{Where: "variable " + v.Name, Expr: m[1]})
	}
	return qs, nil
}

// labelValues matches Grafana's label_values(selector, label).
var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// variables are Grafana's, with a value each that keeps the expression's
// meaning for a parser: a duration where a range goes, a regexp matching
// everything where a label value goes.
var variables = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h",
	"${job}", ".*", "$job", ".*",
	"${namespace}", ".*", "$namespace", ".*",
)

// rangeFuncs take a range vector: PromQL requires its [window], which
// MetricsQL, the parser used here, would let go missing.
var rangeFuncs = map[string]bool{
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true,
	"changes": true, "resets": true, "predict_linear": true, "holt_winters": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "quantile_over_time": true, "stddev_over_time": true, "last_over_time": true,
	"present_over_time": true,
}

// promqlFuncs are PromQL's functions and aggregations; MetricsQL has many
// more, which Prometheus would refuse.
var promqlFuncs = map[string]bool{
	"abs": true, "absent": true, "absent_over_time": true, "ceil": true, "clamp": true, "clamp_max": true,
	"clamp_min": true, "day_of_month": true, "day_of_week": true, "days_in_month": true, "exp": true,
	"floor": true, "histogram_quantile": true, "hour": true, "label_join": true, "label_replace": true,
	"ln": true, "log2": true, "log10": true, "minute": true, "month": true, "round": true, "scalar": true,
	"sgn": true, "sort": true, "sort_desc": true, "sqrt": true, "time": true, "timestamp": true, "vector": true,
	"year": true,
	"sum":  true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

// Metrics parses q (with Grafana's variables filled in) and returns the
// metric names it selects, sorted. It fails for an expression that is not
// PromQL: a parse error, a MetricsQL-only function, a range function
// without its [window], or a selector without a metric name.
func Metrics(q Query) ([]string, error) {
	expr := variables.Replace(q.Expr)
	if strings.Contains(expr, "$") {
		return nil, fmt.Errorf("%s: %q uses a Grafana variable this check does not know", q.Where, q.Expr)
	}
	e, err := metricsql.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: %q does not parse: %w", q.Where, q.Expr, err)
	}
	names := map[string]bool{}
	var bad error
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		if bad != nil {
			return
		}
		switch x := x.(type) {
		case *metricsql.FuncExpr:
			if !rangeFuncs[x.Name] && !promqlFuncs[x.Name] {
				bad = fmt.Errorf("%s: %s() is not a PromQL function", q.Where, x.Name)
				return
			}
			if rangeFuncs[x.Name] {
				arg := 0 // the range vector's place: first, but quantile_over_time's second
				if x.Name == "quantile_over_time" {
					arg = 1
				}
				if len(x.Args) <= arg {
					bad = fmt.Errorf("%s: %s() without its range vector", q.Where, x.Name)
					return
				}
				if r, ok := x.Args[arg].(*metricsql.RollupExpr); !ok || r.Window == nil {
					bad = fmt.Errorf("%s: %s() needs a range vector, name[window]", q.Where, x.Name)
				}
			}
		case *metricsql.AggrFuncExpr:
			if !promqlFuncs[x.Name] {
				bad = fmt.Errorf("%s: %s is not a PromQL aggregation", q.Where, x.Name)
			}
		case *metricsql.MetricExpr:
			for _, lfs := range x.LabelFilterss {
				name := ""
				for _, lf := range lfs {
					if lf.Label == "__name__" && !lf.IsNegative && !lf.IsRegexp {
						name = lf.Value
					}
				}
				if name == "" {
					bad = fmt.Errorf("%s: a selector without a metric name in %q", q.Where, q.Expr)
					return
				}
				names[name] = true
			}
		}
	})
	if bad != nil {
		return nil, bad
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Family is the metric family a series name belongs to: a histogram's or
// summary's _bucket, _sum and _count series are its family's, so a query
// of x_bucket is satisfied by a scrape with family x.
func Family(series string, families map[string]bool) (string, bool) {
	if families[series] {
		return series, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && families[base] {
			return base, true
		}
	}
	return "", false
}
