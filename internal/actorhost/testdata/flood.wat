;; A ticking actor that floods its chain or its state, for the disk budget's
;; tests. The state's first byte picks the flood, a u32 at +4 how many
;; calls each tick makes:
;;   L  log 16 KiB messages ("aaa..."), count per tick
;;   E  record-event 1 MiB of data, count per tick
;;   T  get-current-time, count per tick (tiny events)
;;   S  the state itself (give it 16 MiB): a counter at +8 changes every tick
;;   G  as S, but init grows the state to the u32 at +4 bytes (an Actor
;;      YAML's initialState is at most 1 MiB): `troupe run`'s state flood
;; A u32 at +12 counts the calls whose result was ok, kept in the state
;; after every tick, so a test can check that every call the guest was
;; told succeeded is in the chain.
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "record-event" (func $event (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "get-current-time" (func $now (result i64)))
  (memory (export "memory") 32)
  (data (i32.const 16) "info")
  (data (i32.const 32) "flood")
  (global $heap (mut i32) (i32.const 0x200000))
  (global $oks (mut i32) (i32.const 0))
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
  (func $okSome (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (local.get $p))
    (i32.store (i32.const 1036) (local.get $n))
    (i32.const 1024))
  ;; counts an ok result<_, string> written at 2048
  (func $countOK
    (if (i32.eqz (i32.load8_u (i32.const 2048)))
      (then (global.set $oks (i32.add (global.get $oks) (i32.const 1))))))
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (local $n i32) (local $p i32)
    (global.set $oks (i32.load (i32.add (local.get $sp) (i32.const 12))))
    ;; the log message at 64 KiB (16 KiB of 'a'), the event data at 128 KiB (1 MiB of 'e')
    (memory.fill (i32.const 0x10000) (i32.const 97) (i32.const 0x4000))
    (memory.fill (i32.const 0x20000) (i32.const 101) (i32.const 0x100000))
    (if (i32.eq (i32.load8_u (local.get $sp)) (i32.const 71)) ;; G
      (then
        (local.set $n (i32.load (i32.add (local.get $sp) (i32.const 4))))
        (local.set $p (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $n)))
        (memory.fill (local.get $p) (i32.const 0) (local.get $n))
        (memory.copy (local.get $p) (local.get $sp) (i32.const 16))
        (i32.store8 (local.get $p) (i32.const 83)) ;; S from now on
        (return (call $okSome (local.get $p) (local.get $n)))))
    (call $okSome (local.get $sp) (local.get $sl)))
  (func (export "troupe:actor/ticker#tick") (param $has i32) (param $sp i32) (param $sl i32) (param $t i64) (result i32)
    (local $m i32) (local $n i32) (local $i i32)
    (local.set $m (i32.load8_u (local.get $sp)))
    (local.set $n (i32.load (i32.add (local.get $sp) (i32.const 4))))
    (if (i32.eq (local.get $m) (i32.const 83)) ;; S
      (then
        (i32.store (i32.add (local.get $sp) (i32.const 8))
          (i32.add (i32.load (i32.add (local.get $sp) (i32.const 8))) (i32.const 1)))
        (return (call $okSome (local.get $sp) (local.get $sl)))))
    (block $done
      (loop $calls
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (local.get $m) (i32.const 76)) ;; L
          (then
            (call $log (i32.const 16) (i32.const 4) (i32.const 0x10000) (i32.const 0x4000) (i32.const 2048))
            (call $countOK)))
        (if (i32.eq (local.get $m) (i32.const 69)) ;; E
          (then
            (call $event (i32.const 32) (i32.const 5) (i32.const 0x20000) (i32.const 0x100000) (i32.const 2048))
            (call $countOK)))
        (if (i32.eq (local.get $m) (i32.const 84)) ;; T
          (then
            (drop (call $now))
            (global.set $oks (i32.add (global.get $oks) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $calls)))
    (i32.store (i32.add (local.get $sp) (i32.const 12)) (global.get $oks))
    (call $okSome (local.get $sp) (local.get $sl)))
  (func (export "cabi_post_troupe:actor/ticker#tick") (param $ret i32)
    (global.set $heap (i32.const 0x200000))))
