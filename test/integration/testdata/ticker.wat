;; A ticking actor for the integration suite: its state is a tick counter
;; (8 bytes, a little-endian u64). init keeps a saved counter or starts at
;; zero; every tick records a "tick" event and adds one, so each tick grows
;; the chain (ActorTick and a CustomEvent) and moves the actor's head, which
;; the host publishes at its status interval.
(module
  (import "theater:simple/runtime" "record-event" (func $record_event (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "tick")
  (data (i32.const 32) "{\"tick\":true}")
  (global $heap (mut i32) (i32.const 8192))
  (func (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
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
  ;; result<option<list<u8>>, string> at 1024: ok(some(ptr, len)) or err(ptr, len).
  (func $okSome (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (local.get $p))
    (i32.store (i32.const 1036) (local.get $n))
    (i32.const 1024))
  (func $err (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 1024) (i32.const 1))
    (i32.store (i32.const 1028) (local.get $p))
    (i32.store (i32.const 1032) (local.get $n))
    (i32.const 1024))
  ;; The new state is built at 4096, below the heap the host's copies of the
  ;; old state live in.
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (if (i32.and (local.get $has) (i32.eq (local.get $sl) (i32.const 8)))
      (then (i64.store (i32.const 4096) (i64.load (local.get $sp))))
      (else (i64.store (i32.const 4096) (i64.const 0))))
    (call $okSome (i32.const 4096) (i32.const 8)))
  (func (export "troupe:actor/ticker#tick") (param $has i32) (param $sp i32) (param $sl i32) (param $now i64) (result i32)
    (local $n i64)
    (if (i32.and (local.get $has) (i32.eq (local.get $sl) (i32.const 8)))
      (then (local.set $n (i64.load (local.get $sp)))))
    ;; record-event returns result<_, string> at 2048: a refusal fails the tick.
    (call $record_event (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 13) (i32.const 2048))
    (if (i32.load8_u (i32.const 2048))
      (then (return (call $err (i32.load (i32.const 2052)) (i32.load (i32.const 2056))))))
    (i64.store (i32.const 4096) (i64.add (local.get $n) (i64.const 1)))
    (call $okSome (i32.const 4096) (i32.const 8)))
  (func (export "cabi_post_theater:simple/actor#init") (param i32)
    (global.set $heap (i32.const 8192)))
  (func (export "cabi_post_troupe:actor/ticker#tick") (param i32)
    (global.set $heap (i32.const 8192))))
