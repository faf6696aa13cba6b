;; An actor that keeps a secret in its state. init without a state reads
;; API_TOKEN with get-env and returns it as the state. init with a state
;; hands it to the host before anything else (the runtime's log, a custom
;; event "kept", WASI stdout) and returns it unchanged, without reading the
;; env: the host must scrub the token from what this run hands it though
;; the run never read it, because its env source knows the value.
(module
  (import "theater:simple/runtime" "get-env" (func $get_env (param i32 i32 i32)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "record-event" (func $record_event (param i32 i32 i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 128) "API_TOKEN")
  (data (i32.const 160) "info")
  (data (i32.const 176) "kept")
  (data (i32.const 200) "\n")
  (global $heap (mut i32) (i32.const 16384))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then unreachable))
    (local.get $p))
  ;; ok(some(ptr, len)) in the result area at 1024.
  (func $ok (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store8 (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (local.get $ptr))
    (i32.store (i32.const 1036) (local.get $len))
    (i32.const 1024))
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (if (local.get $has)
      (then
        (call $log (i32.const 160) (i32.const 4) (local.get $sp) (local.get $sl) (i32.const 2064))
        (call $record_event (i32.const 176) (i32.const 4) (local.get $sp) (local.get $sl) (i32.const 2080))
        (i32.store (i32.const 3000) (local.get $sp))
        (i32.store (i32.const 3004) (local.get $sl))
        (i32.store (i32.const 3008) (i32.const 200))
        (i32.store (i32.const 3012) (i32.const 1))
        (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 2) (i32.const 3020)))
        (return (call $ok (local.get $sp) (local.get $sl)))))
    ;; First run: get-env's option<string> lands at 2048 (discriminant,
    ;; ptr @2052, len @2056); the token becomes the state.
    (call $get_env (i32.const 128) (i32.const 9) (i32.const 2048))
    (if (i32.eqz (i32.load8_u (i32.const 2048))) (then unreachable))
    (call $ok (i32.load (i32.const 2052)) (i32.load (i32.const 2056)))))
