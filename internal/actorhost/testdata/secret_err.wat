;; An actor that quotes a secret back: init reads API_TOKEN with get-env,
;; prints "cannot connect with <token>" on stdout and, when its state's
;; first byte is 'I', returns that line as init's err; otherwise init
;; echoes its state and every tick returns the line as its err. The host
;; must scrub the token from the chain, the log and the ActorError.
(module
  (import "theater:simple/runtime" "get-env" (func $get_env (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 128) "API_TOKEN")
  (data (i32.const 160) "cannot connect with ")
  (data (i32.const 200) "\n")
  (global $msgLen (mut i32) (i32.const 20))
  (global $heap (mut i32) (i32.const 16384))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then unreachable))
    (local.get $p))
  ;; The line at 4096: the prefix, then the token (get-env's option<string>
  ;; lands at 2048: discriminant, ptr @2052, len @2056).
  (func $readToken
    (call $get_env (i32.const 128) (i32.const 9) (i32.const 2048))
    (memory.copy (i32.const 4096) (i32.const 160) (i32.const 20))
    (if (i32.load8_u (i32.const 2048))
      (then
        (memory.copy (i32.const 4116) (i32.load (i32.const 2052)) (i32.load (i32.const 2056)))
        (global.set $msgLen (i32.add (i32.const 20) (i32.load (i32.const 2056)))))))
  ;; err(line) in the result area at 1024.
  (func $err (result i32)
    (i32.store8 (i32.const 1024) (i32.const 1))
    (i32.store (i32.const 1028) (i32.const 4096))
    (i32.store (i32.const 1032) (global.get $msgLen))
    (i32.const 1024))
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (call $readToken)
    ;; stdout: the line and a newline, two iovecs at 3000.
    (i32.store (i32.const 3000) (i32.const 4096))
    (i32.store (i32.const 3004) (global.get $msgLen))
    (i32.store (i32.const 3008) (i32.const 200))
    (i32.store (i32.const 3012) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 2) (i32.const 3020)))
    (if (i32.and (local.get $has) (i32.ne (local.get $sl) (i32.const 0)))
      (then (if (i32.eq (i32.load8_u (local.get $sp)) (i32.const 73)) ;; 'I'
        (then (return (call $err))))))
    ;; ok(state as given)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (local.get $has))
    (i32.store (i32.const 1032) (local.get $sp))
    (i32.store (i32.const 1036) (local.get $sl))
    (i32.const 1024))
  (func (export "troupe:actor/ticker#tick") (param $has i32) (param $sp i32) (param $sl i32) (param $now i64) (result i32)
    (call $err)))
