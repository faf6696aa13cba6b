// Package tickhook connects package theater's tick glue to the export that
// package ticker declares, so that only actors importing ticker export tick.
package tickhook
