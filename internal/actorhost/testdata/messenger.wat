;; A message actor (wit/theater-message.wit) for the engine's tests: it
;; handles sends and requests, and sends and asks in turn. What it does is
;; picked by the message's first byte.
;;
;; The state is a u32 counter (none reads as 0).
;; handle-send: i increments the counter; E returns err; T traps; L loops
;;   forever; anything else keeps the state.
;; handle-request: g answers the counter (4 bytes, little endian); e echoes
;;   the data; n answers ok with no response; E returns err; T traps; L
;;   loops forever; a<n><target><rest> asks target with rest and answers
;;   its response (or the error's text); s<n><target><rest> sends rest to
;;   target and answers "ok" (or the error's text); B asks with a 2 GiB
;;   message length and answers the error's text; W asks with a target
;;   pointer outside memory (a trap).
;; The bump allocator is reset by each handler's cabi_post, so memory stays
;; flat however many messages run.
(module
  (import "theater:simple/message-server-host" "send" (func $send (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "request" (func $request (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "handler failed on purpose")
  (data (i32.const 576) "ok")
  (data (i32.const 600) "x")
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
  (func $reset (param i32) (global.set $heap (i32.const 8192)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (call $reset (local.get 0)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-request") (param i32) (call $reset (local.get 0)))
  ;; init: ok(the state as it came).
  (func (export "theater:simple/actor#init") (param $has i32) (param $sp i32) (param $sl i32) (param $idp i32) (param $idl i32) (result i32)
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (local.get $has))
    (i32.store (i32.const 1032) (local.get $sp))
    (i32.store (i32.const 1036) (local.get $sl))
    (i32.const 1024))
  (func $counter (param $has i32) (param $sp i32) (param $sl i32) (result i32)
    (if (result i32) (i32.and (local.get $has) (i32.ge_u (local.get $sl) (i32.const 4)))
      (then (i32.load (local.get $sp)))
      (else (i32.const 0))))
  ;; handle-send's result at 1024: ok(some(state at 4096)) or err.
  (func (export "theater:simple/message-server-client#handle-send")
      (param $has i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (local $m i32)
    (if (i32.eqz (local.get $ml)) (then (local.set $m (i32.const 0))) (else (local.set $m (i32.load8_u (local.get $mp)))))
    (if (i32.eq (local.get $m) (i32.const 69)) ;; E
      (then
        (i32.store (i32.const 1024) (i32.const 1))
        (i32.store (i32.const 1028) (i32.const 512))
        (i32.store (i32.const 1032) (i32.const 25))
        (return (i32.const 1024))))
    (if (i32.eq (local.get $m) (i32.const 84)) (then unreachable)) ;; T
    (if (i32.eq (local.get $m) (i32.const 76)) (then (loop $forever (br $forever)))) ;; L
    (i32.store (i32.const 4096) (call $counter (local.get $has) (local.get $sp) (local.get $sl)))
    (if (i32.eq (local.get $m) (i32.const 105)) ;; i
      (then (i32.store (i32.const 4096) (i32.add (i32.load (i32.const 4096)) (i32.const 1)))))
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1))
    (i32.store (i32.const 1032) (i32.const 4096))
    (i32.store (i32.const 1036) (i32.const 4))
    (i32.const 1024))
  ;; handle-request's result at 1280 (28 bytes): the state kept as it came,
  ;; the response (ptr, len) given.
  (func $answer (param $has i32) (param $sp i32) (param $sl i32) (param $rp i32) (param $rl i32) (result i32)
    (i32.store (i32.const 1280) (i32.const 0))
    (i32.store (i32.const 1284) (local.get $has))
    (i32.store (i32.const 1288) (local.get $sp))
    (i32.store (i32.const 1292) (local.get $sl))
    (i32.store (i32.const 1296) (i32.const 1))
    (i32.store (i32.const 1300) (local.get $rp))
    (i32.store (i32.const 1304) (local.get $rl))
    (i32.const 1280))
  ;; answerCall answers what the send or request import left at 2048: its
  ;; error string, or (for a request) its response, or "ok".
  (func $answerCall (param $has i32) (param $sp i32) (param $sl i32) (param $isRequest i32) (result i32)
    (if (result i32) (i32.or (i32.load8_u (i32.const 2048)) (local.get $isRequest))
      (then (call $answer (local.get $has) (local.get $sp) (local.get $sl) (i32.load (i32.const 2052)) (i32.load (i32.const 2056))))
      (else (call $answer (local.get $has) (local.get $sp) (local.get $sl) (i32.const 576) (i32.const 2)))))
  (func (export "theater:simple/message-server-client#handle-request")
      (param $has i32) (param $sp i32) (param $sl i32) (param $rip i32) (param $ril i32) (param $dp i32) (param $dl i32) (result i32)
    (local $m i32) (local $n i32)
    (if (i32.eqz (local.get $dl)) (then (local.set $m (i32.const 0))) (else (local.set $m (i32.load8_u (local.get $dp)))))
    (if (i32.eq (local.get $m) (i32.const 69)) ;; E
      (then
        (i32.store (i32.const 1280) (i32.const 1))
        (i32.store (i32.const 1284) (i32.const 512))
        (i32.store (i32.const 1288) (i32.const 25))
        (return (i32.const 1280))))
    (if (i32.eq (local.get $m) (i32.const 84)) (then unreachable)) ;; T
    (if (i32.eq (local.get $m) (i32.const 76)) (then (loop $forever (br $forever)))) ;; L
    (if (i32.eq (local.get $m) (i32.const 103)) ;; g
      (then
        (i32.store (i32.const 4096) (call $counter (local.get $has) (local.get $sp) (local.get $sl)))
        (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (i32.const 4096) (i32.const 4)))))
    (if (i32.eq (local.get $m) (i32.const 101)) ;; e
      (then (return (call $answer (local.get $has) (local.get $sp) (local.get $sl) (local.get $dp) (local.get $dl)))))
    (if (i32.eq (local.get $m) (i32.const 110)) ;; n: ok(state, none)
      (then
        (i32.store (i32.const 1280) (i32.const 0))
        (i32.store (i32.const 1284) (local.get $has))
        (i32.store (i32.const 1288) (local.get $sp))
        (i32.store (i32.const 1292) (local.get $sl))
        (i32.store (i32.const 1296) (i32.const 0))
        (return (i32.const 1280))))
    (if (i32.or (i32.eq (local.get $m) (i32.const 97)) (i32.eq (local.get $m) (i32.const 115))) ;; a, s
      (then
        (local.set $n (i32.load8_u (i32.add (local.get $dp) (i32.const 1))))
        (if (i32.eq (local.get $m) (i32.const 97))
          (then (call $request (i32.add (local.get $dp) (i32.const 2)) (local.get $n)
            (i32.add (i32.add (local.get $dp) (i32.const 2)) (local.get $n))
            (i32.sub (i32.sub (local.get $dl) (i32.const 2)) (local.get $n)) (i32.const 2048)))
          (else (call $send (i32.add (local.get $dp) (i32.const 2)) (local.get $n)
            (i32.add (i32.add (local.get $dp) (i32.const 2)) (local.get $n))
            (i32.sub (i32.sub (local.get $dl) (i32.const 2)) (local.get $n)) (i32.const 2048))))
        (return (call $answerCall (local.get $has) (local.get $sp) (local.get $sl) (i32.eq (local.get $m) (i32.const 97))))))
    (if (i32.eq (local.get $m) (i32.const 66)) ;; B: a 2 GiB message
      (then
        (call $request (i32.const 600) (i32.const 1) (i32.const 0) (i32.const 0x80000000) (i32.const 2048))
        (return (call $answerCall (local.get $has) (local.get $sp) (local.get $sl) (i32.const 1)))))
    (if (i32.eq (local.get $m) (i32.const 87)) ;; W: a wild target pointer
      (then
        (call $request (i32.const 0xFFFFFFF0) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 2048))
        (return (call $answerCall (local.get $has) (local.get $sp) (local.get $sl) (i32.const 1)))))
    (call $answer (local.get $has) (local.get $sp) (local.get $sl) (local.get $dp) (local.get $dl)))
)
