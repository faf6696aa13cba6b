// Package msghook connects package theater's message glue to the exports
// that package messages declares, so that only actors importing messages
// export handle-send and handle-request.
package msghook
