;; The smallest useful message actor (wit/theater-message.wit), for the
;; engine's message benchmarks and its idle-cost tests: whatever a call into
;; it costs beyond a few wasm instructions is the engine's.
;;
;; It keeps its state as it came (none stays none) and has no cabi_post:
;; each handler resets the bump allocator before it returns, since what it
;; returns points into the arguments the host lowered for this call, which
;; stay untouched until the host's next cabi_realloc (after it has lifted
;; the result).
;; handle-send: ok(the state), nothing else.
;; handle-request, picked by the data's first byte:
;;   N<u32 n><u8 len><target><msg> sends msg to target n times in this one
;;     call and answers how many sends returned ok (u32, little endian);
;;   A<u8 len><target><msg> asks target with msg and answers its response
;;     (or the error's text);
;;   anything else is echoed.
(module
  (import "theater:simple/message-server-host" "send" (func $send (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "request" (func $request (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
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
  ;; ok(the state as it came) in the result area at 1024: init's and
  ;; handle-send's.
  (func $keep (param $has i32) (param $sp i32) (param $sl i32) (result i32)
    (global.set $heap (i32.const 8192))
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (local.get $has))
    (i32.store (i32.const 1032) (local.get $sp))
    (i32.store (i32.const 1036) (local.get $sl))
    (i32.const 1024))
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (call $keep (local.get $has) (local.get $sp) (local.get $sl)))
  (func (export "theater:simple/message-server-client#handle-send")
      (param $has i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (call $keep (local.get $has) (local.get $sp) (local.get $sl)))
  ;; handle-request's result at 1280 (28 bytes): the state kept, the
  ;; response (ptr, len).
  (func $answer (param $has i32) (param $sp i32) (param $sl i32) (param $rp i32) (param $rl i32) (result i32)
    (global.set $heap (i32.const 8192))
    (i32.store (i32.const 1280) (i32.const 0))
    (i32.store (i32.const 1284) (local.get $has))
    (i32.store (i32.const 1288) (local.get $sp))
    (i32.store (i32.const 1292) (local.get $sl))
    (i32.store (i32.const 1296) (i32.const 1))
    (i32.store (i32.const 1300) (local.get $rp))
    (i32.store (i32.const 1304) (local.get $rl))
    (i32.const 1280))
  (func (export "theater:simple/message-server-client#handle-request")
      (param $has i32) (param $sp i32) (param $sl i32) (param $rip i32) (param $ril i32) (param $dp i32) (param $dl i32) (result i32)
    (local $m i32) (local $n i32) (local $tl i32) (local $tp i32) (local $ok i32)
    (if (i32.eqz (local.get $dl))
      (then (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (local.get $dp) (local.get $dl)))))
    (local.set $m (i32.load8_u (local.get $dp)))
    ;; N: a burst of n sends. Short data echoes instead.
    (if (i32.and (i32.eq (local.get $m) (i32.const 78)) (i32.ge_u (local.get $dl) (i32.const 6)))
      (then
        (local.set $n (i32.load align=1 (i32.add (local.get $dp) (i32.const 1))))
        (local.set $tl (i32.load8_u (i32.add (local.get $dp) (i32.const 5))))
        (local.set $tp (i32.add (local.get $dp) (i32.const 6)))
        (if (i32.gt_u (i32.add (i32.const 6) (local.get $tl)) (local.get $dl))
          (then (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (local.get $dp) (local.get $dl)))))
        (block $done
          (loop $next
            (br_if $done (i32.eqz (local.get $n)))
            (call $send (local.get $tp) (local.get $tl)
              (i32.add (local.get $tp) (local.get $tl))
              (i32.sub (local.get $dl) (i32.add (i32.const 6) (local.get $tl)))
              (i32.const 2048))
            (if (i32.eqz (i32.load8_u (i32.const 2048)))
              (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $next)))
        (i32.store (i32.const 4096) (local.get $ok))
        (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (i32.const 4096) (i32.const 4)))))
    ;; A: ask once.
    (if (i32.and (i32.eq (local.get $m) (i32.const 65)) (i32.ge_u (local.get $dl) (i32.const 2)))
      (then
        (local.set $tl (i32.load8_u (i32.add (local.get $dp) (i32.const 1))))
        (local.set $tp (i32.add (local.get $dp) (i32.const 2)))
        (if (i32.gt_u (i32.add (i32.const 2) (local.get $tl)) (local.get $dl))
          (then (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (local.get $dp) (local.get $dl)))))
        (call $request (local.get $tp) (local.get $tl)
          (i32.add (local.get $tp) (local.get $tl))
          (i32.sub (local.get $dl) (i32.add (i32.const 2) (local.get $tl)))
          (i32.const 2048))
        (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (i32.load (i32.const 2052)) (i32.load (i32.const 2056))))))
    (call $answer (local.get $has) (local.get $sp) (local.get $sl) (local.get $dp) (local.get $dl)))
)
