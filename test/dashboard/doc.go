// Package dashboard reads the Grafana dashboard the chart ships
// (charts/troupe/dashboards) and checks its queries: every expression
// parses as PromQL once Grafana's variables are filled in, and names only
// metrics the caller knows (the packaging test checks the first, the e2e
// suite the second against a real scrape of a host).
package dashboard
