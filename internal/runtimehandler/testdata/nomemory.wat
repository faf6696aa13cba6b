;; A guest without an exported memory or cabi_realloc: get-current-time
;; works (it needs neither), get-actor-id must trap with a clear reason.
(module
  (import "theater:simple/runtime" "get-current-time" (func $get_current_time (result i64)))
  (import "theater:simple/runtime" "get-actor-id" (func $get_actor_id (param i32)))
  (func (export "call-get-current-time") (result i64) (call $get_current_time))
  (func (export "call-get-actor-id") (param i32) (call $get_actor_id (local.get 0))))
