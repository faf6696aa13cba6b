;; Benchmark guest: each export makes n guest->host->guest round trips from
;; inside wasm, so the figure per iteration is the cost of one import call.
;; "bench" "noop" is a host function that does nothing: the baseline.
(module
  (import "bench" "noop" (func $noop))
  (import "theater:simple/runtime" "get-current-time" (func $get_current_time (result i64)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "get-actor-name" (func $get_actor_name (param i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096))
  (data (i32.const 64) "info")
  ;; a 100-byte message at 128
  (data (i32.const 128) "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")

  (func (export "loop-noop") (param $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (call $noop)
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))))

  (func (export "loop-time") (param $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (drop (call $get_current_time))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))))

  (func (export "loop-log") (param $n i32) (result i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (call $log (i32.const 64) (i32.const 4) (i32.const 128) (i32.const 100) (i32.const 16))
      (if (i32.load8_u (i32.const 16)) (then (return (i32.const 1))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (i32.const 0))

  ;; get-actor-name, its string through cabi_realloc (the canonical ABI);
  ;; area.wat is the same loop for a guest with a result area.
  (func (export "loop-name") (param $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (call $get_actor_name (i32.const 16))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))))
