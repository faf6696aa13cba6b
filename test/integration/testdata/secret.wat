;; An actor that reads a Secret through get-env, for the integration suite.
;; init reads DB_PASSWORD and records only its length, as the metric
;; secret_bytes (init fails when it is unset). With LEAK set it is a careless
;; actor: it logs the value at info and fails init with
;; "cannot connect with password <value>", so the suite can check that the
;; host keeps the value out of its logs, the status and Events.
(module
  (import "theater:simple/runtime" "get-env" (func $get_env (param i32 i32 i32)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "record-metric" (func $record_metric (param i32 i32 f64 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "DB_PASSWORD")                   ;; 16   11
  (data (i32.const 32) "LEAK")                          ;; 32    4
  (data (i32.const 48) "secret_bytes")                  ;; 48   12
  (data (i32.const 64) "info")                          ;; 64    4
  (data (i32.const 80) "DB_PASSWORD is not set")        ;; 80   22
  (data (i32.const 112) "cannot connect with password ") ;; 112 29
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
  ;; init's result<tuple<option<list<u8>>>, string> at 1088.
  (func $err (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 1088) (i32.const 1))
    (i32.store (i32.const 1092) (local.get $p))
    (i32.store (i32.const 1096) (local.get $n))
    (i32.const 1088))
  (func $okNone (result i32)
    (i32.store (i32.const 1088) (i32.const 0))
    (i32.store (i32.const 1092) (i32.const 0))
    (i32.const 1088))
  ;; An import's result<_, string> at 1040 that is an error becomes init's.
  (func $hostErr (result i32)
    (call $err (i32.load (i32.const 1044)) (i32.load (i32.const 1048))))
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (local $vp i32) (local $vl i32)
    ;; get-env -> option<string> at 1024: +0 discriminant, +4 ptr, +8 len
    (call $get_env (i32.const 16) (i32.const 11) (i32.const 1024))
    (if (i32.eqz (i32.load8_u (i32.const 1024)))
      (then (return (call $err (i32.const 80) (i32.const 22)))))
    (local.set $vp (i32.load (i32.const 1028)))
    (local.set $vl (i32.load (i32.const 1032)))
    (call $record_metric (i32.const 48) (i32.const 12) (f64.convert_i32_u (local.get $vl)) (i32.const 1040))
    (if (i32.load8_u (i32.const 1040)) (then (return (call $hostErr))))
    (call $get_env (i32.const 32) (i32.const 4) (i32.const 1056))
    (if (i32.eqz (i32.load8_u (i32.const 1056)))
      (then (return (call $okNone))))
    ;; LEAK: log the value, then fail with it in the message (built at 4096).
    (call $log (i32.const 64) (i32.const 4) (local.get $vp) (local.get $vl) (i32.const 1040))
    (if (i32.load8_u (i32.const 1040)) (then (return (call $hostErr))))
    (memory.copy (i32.const 4096) (i32.const 112) (i32.const 29))
    (memory.copy (i32.const 4125) (local.get $vp) (local.get $vl))
    (call $err (i32.const 4096) (i32.add (i32.const 29) (local.get $vl))))
  (func (export "cabi_post_theater:simple/actor#init") (param i32)
    (global.set $heap (i32.const 8192))))
