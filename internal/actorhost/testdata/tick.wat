;; A ticking actor (wit/troupe-ticker.wit): init echoes its state; tick's
;; behaviour is picked by the state's first byte, so one module covers the
;; well-behaved and the hostile cases. The state is 16 bytes: mode u8 at
;; +0, a tick counter u32 at +4, the last now-ms tick was handed (u64) at
;; +8. The host allocates the state with cabi_realloc before every tick;
;; tick's cabi_post resets the bump allocator, so memory stays constant
;; however many ticks run.
;;
;; well-behaved modes: c counts (and stores now-ms); i is idle (returns the
;; state unchanged, no runtime calls); l logs "tick" and returns the state
;; unchanged; q counts and asks to shut down at 3; n returns none.
;; hostile modes: O result pointer outside memory; M misaligned result;
;; D bad result discriminant; P bad option discriminant; S state outside
;; memory; B a 2 GiB state; E err("tick failed on purpose"); T traps;
;; L loops forever; A cabi_realloc answers outside memory once init has
;; returned; H tick's cabi_post traps.
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "info")
  (data (i32.const 32) "tick")
  (data (i32.const 48) "bye")
  (data (i32.const 3000) "tick failed on purpose")
  (global $mode (mut i32) (i32.const 0))
  (global $initDone (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 8192))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $need i32)
    (if (i32.and (global.get $initDone) (i32.eq (global.get $mode) (i32.const 65))) ;; 'A'
      (then (return (i32.const 0xffffff00))))
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.set $need (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (i32.add (i32.div_u (local.get $need) (i32.const 65536)) (i32.const 1))) (i32.const -1))
        (then unreachable))))
    (local.get $p))
  ;; ok(some(ptr, len)) in the result area at 1024.
  (func $okSome (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (local.get $p))
    (i32.store (i32.const 1036) (local.get $n))
    (i32.const 1024))
  (func $okNone (result i32)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 0))
    (i32.const 1024))
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (if (local.get $has) (then (if (local.get $sl) (then (global.set $mode (i32.load8_u (local.get $sp)))))))
    (global.set $initDone (i32.const 1))
    (if (result i32) (local.get $has)
      (then (call $okSome (local.get $sp) (local.get $sl)))
      (else (call $okNone))))
  (func (export "troupe:actor/ticker#tick") (param $has i32) (param $sp i32) (param $sl i32) (param $now i64) (result i32)
    (local $m i32)
    (if (i32.or (i32.eqz (local.get $has)) (i32.lt_u (local.get $sl) (i32.const 16)))
      (then (return (call $okNone))))
    (local.set $m (i32.load8_u (local.get $sp)))
    (global.set $mode (local.get $m))
    ;; the new state is built at 4096
    (memory.copy (i32.const 4096) (local.get $sp) (i32.const 16))
    (block $hostile
      (if (i32.eq (local.get $m) (i32.const 99)) ;; c
        (then
          (i32.store (i32.const 4100) (i32.add (i32.load (i32.const 4100)) (i32.const 1)))
          (i64.store (i32.const 4104) (local.get $now))
          (return (call $okSome (i32.const 4096) (i32.const 16)))))
      (if (i32.eq (local.get $m) (i32.const 105)) ;; i
        (then (return (call $okSome (local.get $sp) (local.get $sl)))))
      (if (i32.eq (local.get $m) (i32.const 108)) ;; l
        (then
          (call $log (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 4) (i32.const 2048))
          (return (call $okSome (local.get $sp) (local.get $sl)))))
      (if (i32.eq (local.get $m) (i32.const 113)) ;; q
        (then
          (i32.store (i32.const 4100) (i32.add (i32.load (i32.const 4100)) (i32.const 1)))
          (if (i32.ge_u (i32.load (i32.const 4100)) (i32.const 3))
            (then (call $shutdown (i32.const 1) (i32.const 48) (i32.const 3) (i32.const 2048))))
          (return (call $okSome (i32.const 4096) (i32.const 16)))))
      (if (i32.eq (local.get $m) (i32.const 110)) ;; n
        (then (return (call $okNone))))
      (br $hostile))
    (if (i32.eq (local.get $m) (i32.const 79)) ;; O
      (then (return (i32.const 0xfffffff0))))
    (if (i32.eq (local.get $m) (i32.const 77)) ;; M
      (then (drop (call $okNone)) (return (i32.const 1026))))
    (if (i32.eq (local.get $m) (i32.const 68)) ;; D
      (then (i32.store8 (i32.const 1024) (i32.const 7)) (return (i32.const 1024))))
    (if (i32.eq (local.get $m) (i32.const 80)) ;; P
      (then (drop (call $okNone)) (i32.store8 (i32.const 1028) (i32.const 9)) (return (i32.const 1024))))
    (if (i32.eq (local.get $m) (i32.const 83)) ;; S
      (then (return (call $okSome (i32.const 0xfffa) (i32.const 100)))))
    (if (i32.eq (local.get $m) (i32.const 66)) ;; B
      (then (return (call $okSome (i32.const 16) (i32.const 0x80000000)))))
    (if (i32.eq (local.get $m) (i32.const 69)) ;; E
      (then
        (i32.store (i32.const 1024) (i32.const 1))
        (i32.store (i32.const 1028) (i32.const 3000))
        (i32.store (i32.const 1032) (i32.const 22))
        (return (i32.const 1024))))
    (if (i32.eq (local.get $m) (i32.const 76)) ;; L
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $m) (i32.const 72)) ;; H: cabi_post traps
      (then (return (call $okSome (local.get $sp) (local.get $sl)))))
    unreachable) ;; T, and any unknown mode
  (func (export "cabi_post_troupe:actor/ticker#tick") (param $ret i32)
    (if (i32.eq (global.get $mode) (i32.const 72)) (then unreachable))
    (global.set $heap (i32.const 8192))))
