;; A guest with memory but no cabi_realloc: a call returning a string must
;; trap naming the missing export; one returning none or ok must work.
(module
  (import "theater:simple/runtime" "get-actor-id" (func $get_actor_id (param i32)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "info")
  (data (i32.const 80) "hello")
  (func (export "call-get-actor-id") (param i32) (call $get_actor_id (local.get 0)))
  ;; log("info", "hello") with the result at 16
  (func (export "log-hello") (result i32)
    (call $log (i32.const 64) (i32.const 4) (i32.const 80) (i32.const 5) (i32.const 16))
    (i32.load8_u (i32.const 16))))
