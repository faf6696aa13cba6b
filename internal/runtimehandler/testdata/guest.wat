;; A test guest that forwards its exports' parameters verbatim to the
;; runtime imports, so tests can hand the host any pointer, length, return
;; pointer or discriminant, hostile ones included. Its cabi_realloc is a
;; bump allocator whose behaviour the test selects with set-realloc-mode:
;;   0 bump allocate (honouring alignment) from 32768 upwards
;;   1 answer the value given to set-realloc-answer, whatever it is
;;   2 trap (unreachable)
;;   3 call get-actor-id from inside cabi_realloc (re-entry)
;;   4 loop forever
;;   5 grow memory by one page, then bump allocate at its start
;; Import signatures are the canonical ABI lowering (see host.go).
(module
  (import "theater:simple/runtime" "get-actor-id" (func $get_actor_id (param i32)))
  (import "theater:simple/runtime" "get-actor-name" (func $get_actor_name (param i32)))
  (import "theater:simple/runtime" "get-current-time" (func $get_current_time (result i64)))
  (import "theater:simple/runtime" "get-env" (func $get_env (param i32 i32 i32)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "record-metric" (func $record_metric (param i32 i32 f64 i32)))
  (import "theater:simple/runtime" "record-event" (func $record_event (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "get-theater-version" (func $get_theater_version (param i32)))
  (import "theater:simple/runtime" "get-system-info" (func $get_system_info (param i32)))
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "send" (func $send (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "request" (func $request (param i32 i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 32768))
  (global $mode (mut i32) (i32.const 0))
  (global $answer (mut i32) (i32.const 0))

  (func (export "set-realloc-mode") (param i32) (global.set $mode (local.get 0)))
  (func (export "set-realloc-answer") (param i32) (global.set $answer (local.get 0)))
  (func (export "heap") (result i32) (global.get $heap))
  (func (export "set-heap") (param i32) (global.set $heap (local.get 0)))

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (if (i32.eq (global.get $mode) (i32.const 1)) (then (return (global.get $answer))))
    (if (i32.eq (global.get $mode) (i32.const 2)) (then unreachable))
    (if (i32.eq (global.get $mode) (i32.const 3)) (then (call $get_actor_id (i32.const 16))))
    (if (i32.eq (global.get $mode) (i32.const 4)) (then (loop $forever (br $forever))))
    (if (i32.eq (global.get $mode) (i32.const 5))
      (then
        (global.set $heap (i32.mul (memory.grow (i32.const 1)) (i32.const 65536)))))
    ;; p = (heap + align - 1) & -align
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))

  (func (export "call-get-actor-id") (param i32) (call $get_actor_id (local.get 0)))
  (func (export "call-get-actor-name") (param i32) (call $get_actor_name (local.get 0)))
  (func (export "call-get-current-time") (result i64) (call $get_current_time))
  (func (export "call-get-env") (param i32 i32 i32)
    (call $get_env (local.get 0) (local.get 1) (local.get 2)))
  (func (export "call-log") (param i32 i32 i32 i32 i32)
    (call $log (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "call-record-metric") (param i32 i32 f64 i32)
    (call $record_metric (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "call-record-event") (param i32 i32 i32 i32 i32)
    (call $record_event (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "call-get-theater-version") (param i32) (call $get_theater_version (local.get 0)))
  (func (export "call-get-system-info") (param i32) (call $get_system_info (local.get 0)))
  (func (export "call-shutdown") (param i32 i32 i32 i32)
    (call $shutdown (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "call-send") (param i32 i32 i32 i32 i32)
    (call $send (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "call-request") (param i32 i32 i32 i32 i32)
    (call $request (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  ;; A bare import call for the benchmark baseline lives in bench.wat.
)
