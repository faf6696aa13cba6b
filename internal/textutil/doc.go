// Package textutil holds the small text helpers that several packages need
// to agree on, such as cutting a message to the size an API field allows.
package textutil
