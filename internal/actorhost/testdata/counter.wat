;; A well-behaved actor: _initialize sets a flag that init requires; init
;; logs its actor id through the runtime handler and a line through WASI
;; stdout, and returns the state it was given with one "x" appended.
;; cabi_post scribbles over the returned state, as a free would, so a host
;; that read the state after it would see zeros. loop-time and loop-log are
;; the benchmark's guest -> host -> guest round trips; spin never returns.
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "get-current-time" (func $now (result i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "info")
  (data (i32.const 64) "from stdout\n")
  ;; iovec {ptr 64, len 12}
  (data (i32.const 96) "\40\00\00\00\0c\00\00\00")
  ;; 100 bytes of message for loop-log
  (data (i32.const 128) "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")
  (global $initialized (mut i32) (i32.const 0))
  ;; A bump allocator: the host calls cabi_realloc(0, 0, align, size).
  (global $heap (mut i32) (i32.const 8192))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.set $need (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (i32.add (i32.div_u (local.get $need) (i32.const 65536)) (i32.const 1))) (i32.const -1))
        (then unreachable))))
    (local.get $p))
  (func (export "_initialize") (global.set $initialized (i32.const 1)))
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (local $p i32)
    (if (i32.eqz (global.get $initialized)) (then unreachable))
    (call $log (i32.const 16) (i32.const 4) (local.get $idp) (local.get $idl) (i32.const 2048))
    (drop (call $fd_write (i32.const 1) (i32.const 96) (i32.const 1) (i32.const 112)))
    (local.set $p (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.add (local.get $sl) (i32.const 1))))
    (if (local.get $has) (then (memory.copy (local.get $p) (local.get $sp) (local.get $sl))))
    (i32.store8 (i32.add (local.get $p) (local.get $sl)) (i32.const 120))
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store8 (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (local.get $p))
    (i32.store (i32.const 1036) (i32.add (local.get $sl) (i32.const 1)))
    (i32.const 1024))
  (func (export "cabi_post_theater:simple/actor#init") (param $ret i32)
    (memory.fill (i32.load (i32.const 1032)) (i32.const 0) (i32.load (i32.const 1036))))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "loop-time") (param $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (drop (call $now))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l))))
  (func (export "loop-log") (param $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (call $log (i32.const 16) (i32.const 4) (i32.const 128) (i32.const 100) (i32.const 2048))
      (if (i32.load8_u (i32.const 2048)) (then unreachable))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))))
