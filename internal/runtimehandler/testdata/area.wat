;; A guest that opts in to the result area (wit/troupe-result-area.wit):
;; troupe:actor/result-area#result-area returns $info, a pointer to (area
;; address, capacity): by default 1024, which holds (4096, 256). Tests move
;; $info with set-info and write what it points at, to hand the host bad
;; areas; set-mode makes result-area trap (1) or call the host from inside
;; itself (2), which the host refuses. cabi_realloc is a bump allocator from 16384 that counts its calls
;; in the exported global "reallocs", so a test sees which results took it.
(module
  (import "theater:simple/runtime" "get-actor-name" (func $get_actor_name (param i32)))
  (import "theater:simple/runtime" "get-env" (func $get_env (param i32 i32 i32)))
  (import "theater:simple/runtime" "get-system-info" (func $get_system_info (param i32)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $info (mut i32) (i32.const 1024))
  (global $heap (mut i32) (i32.const 16384))
  (global $reallocs (export "reallocs") (mut i32) (i32.const 0))
  (global $area_calls (export "area-calls") (mut i32) (i32.const 0))
  (global $mode (mut i32) (i32.const 0))
  (data (i32.const 1024) "\00\10\00\00\00\01\00\00")
  (data (i32.const 64) "nope")
  (func (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (global.set $reallocs (i32.add (global.get $reallocs) (i32.const 1)))
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "troupe:actor/result-area#result-area") (result i32)
    (global.set $area_calls (i32.add (global.get $area_calls) (i32.const 1)))
    (if (i32.eq (global.get $mode) (i32.const 1)) (then unreachable))
    (if (i32.eq (global.get $mode) (i32.const 2)) (then (call $get_actor_name (i32.const 32))))
    (global.get $info))
  (func (export "set-info") (param i32) (global.set $info (local.get 0)))
  (func (export "set-mode") (param i32) (global.set $mode (local.get 0)))
  (func (export "call-get-actor-name") (param i32) (call $get_actor_name (local.get 0)))
  (func (export "call-get-env") (param i32 i32 i32) (call $get_env (local.get 0) (local.get 1) (local.get 2)))
  (func (export "call-get-system-info") (param i32) (call $get_system_info (local.get 0)))
  ;; an unknown level: an error result, its message a string result
  (func (export "call-log-bad-level") (param i32) (call $log (i32.const 64) (i32.const 4) (i32.const 64) (i32.const 4) (local.get 0)))
  (func (export "loop-name") (param $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (call $get_actor_name (i32.const 16))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))))
