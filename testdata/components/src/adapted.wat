;; The smallest actor that needs the wasi_snapshot_preview1 adapter when
;; wrapped as a component, and that imports one preview1 function twice, as
;; Go's runtime does: wit-component renames the second import to
;; "fd_write [v2]", which the reduction of the component must bind back to
;; the host's fd_write. hack/components.sh --testdata wraps adapted.wasm
;; (from `make wat`) into ../adapted.wasm with the preview1 reactor adapter.
;;
;; init writes "stdout via fd_write" and "stdout via fd_write [v2]" to
;; stdout, one through each import, logs "adapted init" at info through the
;; runtime, and returns the state it was given with one "+" appended (none:
;; "+"). init fails unless _initialize ran first.
(module
  (type $fd_write (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (type $fd_write)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write2 (type $fd_write)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (global $initialized (mut i32) (i32.const 0))

  (data (i32.const 16) "info")
  (data (i32.const 32) "adapted init")
  (data (i32.const 64) "stdout via fd_write\n")            ;; 20 bytes
  (data (i32.const 96) "stdout via fd_write [v2]\n")       ;; 25 bytes
  (data (i32.const 128) "_initialize was not called")      ;; 26 bytes
  ;; iovecs {ptr, len} for the two writes
  (data (i32.const 160) "\40\00\00\00\14\00\00\00")
  (data (i32.const 168) "\60\00\00\00\19\00\00\00")

  (func (export "_initialize")
    (global.set $initialized (i32.const 1)))

  ;; A bump allocator; nothing is freed (an actor's instance lives for one
  ;; run).
  (func $realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.shl (memory.size) (i32.const 16))) (i32.const 16)) (i32.const 1)))
                        (i32.const -1))
              (then unreachable))))
    (if (local.get $old)
      (then (memory.copy (local.get $p) (local.get $old)
              (select (local.get $old_size) (local.get $size) (i32.lt_u (local.get $old_size) (local.get $size))))))
    (global.set $heap (local.get $end))
    (local.get $p))

  ;; Result area at 1024: +0 discriminant, +4 option / err ptr, +8, +12.
  (func (export "theater:simple/actor#init")
    (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (local $p i32)
    (if (i32.eqz (global.get $initialized))
      (then
        (i32.store8 (i32.const 1024) (i32.const 1))
        (i32.store (i32.const 1028) (i32.const 128))
        (i32.store (i32.const 1032) (i32.const 26))
        (return (i32.const 1024))))
    (drop (call $fd_write (i32.const 1) (i32.const 160) (i32.const 1) (i32.const 176)))
    (drop (call $fd_write2 (i32.const 1) (i32.const 168) (i32.const 1) (i32.const 176)))
    (call $log (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 12) (i32.const 1008))
    ;; new state: the old one (or nothing) and "+"
    (if (i32.eqz (local.get $has)) (then (local.set $sl (i32.const 0))))
    (local.set $p (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.add (local.get $sl) (i32.const 1))))
    (if (local.get $sl) (then (memory.copy (local.get $p) (local.get $sp) (local.get $sl))))
    (i32.store8 (i32.add (local.get $p) (local.get $sl)) (i32.const 43))
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (local.get $p))
    (i32.store (i32.const 1036) (i32.add (local.get $sl) (i32.const 1)))
    (i32.const 1024))
)
