;; idle.wat with 16384 pages (1 GiB) of declared minimum memory, mapped but
;; never touched: an actor whose memory the host's budget counts at 1 GiB,
;; for the memory tests, while the machine gives it only what it touches.
(module
  (memory (export "memory") 16384)
  (global $heap (mut i32) (i32.const 8192))
  ;; A bump allocator; init's cabi_post frees everything.
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
  ;; result<tuple<option<list<u8>>>, string> at 1024: ok, and the state it
  ;; was given (some) or none.
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (local.get $has))
    (i32.store (i32.const 1032) (local.get $sp))
    (i32.store (i32.const 1036) (local.get $sl))
    (i32.const 1024))
  (func (export "cabi_post_theater:simple/actor#init") (param i32)
    (global.set $heap (i32.const 8192))))
