;; An actor written the way wit-bindgen lowers the seed's examples: it
;; consumes what the host returns (pointers from its own cabi_realloc) and
;; passes it back, so a wrong layout on either side shows up as a wrong
;; value or a trap. `run` returns 0 on success, or the step that failed.
(module
  (import "theater:simple/runtime" "get-actor-name" (func $get_actor_name (param i32)))
  (import "theater:simple/runtime" "get-env" (func $get_env (param i32 i32 i32)))
  (import "theater:simple/runtime" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "record-metric" (func $record_metric (param i32 i32 f64 i32)))
  (import "theater:simple/runtime" "record-event" (func $record_event (param i32 i32 i32 i32 i32)))
  (import "theater:simple/runtime" "get-system-info" (func $get_system_info (param i32)))
  (import "theater:simple/runtime" "get-current-time" (func $get_current_time (result i64)))
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))

  (data (i32.const 1024) "GREETING")           ;; 8
  (data (i32.const 1040) "info")               ;; 4
  (data (i32.const 1048) "warn")               ;; 4
  (data (i32.const 1056) "error")              ;; 5
  (data (i32.const 1064) "verbose")            ;; 7
  (data (i32.const 1072) "requests_processed") ;; 18
  (data (i32.const 1096) "user_login")         ;; 10
  (data (i32.const 1112) "User logged in")     ;; 14
  (data (i32.const 1136) "cpu_count")          ;; 9
  (data (i32.const 1152) "bye")                ;; 3
  (data (i32.const 1160) "UNDECLARED")         ;; 10
  (data (i32.const 1176) "x")                  ;; 1
  (data (i32.const 1184) "uptime_seconds")     ;; 14

  ;; Return areas: 16 (12 bytes, align 4), 32 (56 bytes, align 8), 96 (12 bytes).
  (func (export "run") (result i32)
    ;; 1. get-env("GREETING") must be some; log it at info, passing the
    ;;    host-allocated string straight back.
    (call $get_env (i32.const 1024) (i32.const 8) (i32.const 16))
    (if (i32.ne (i32.load8_u (i32.const 16)) (i32.const 1)) (then (return (i32.const 1))))
    (call $log (i32.const 1040) (i32.const 4) (i32.load (i32.const 20)) (i32.load (i32.const 24)) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 2))))
    ;; 2. get-env("UNDECLARED") must be none.
    (call $get_env (i32.const 1160) (i32.const 10) (i32.const 16))
    (if (i32.ne (i32.load8_u (i32.const 16)) (i32.const 0)) (then (return (i32.const 3))))
    ;; 3. get-actor-name, logged at warn.
    (call $get_actor_name (i32.const 16))
    (call $log (i32.const 1048) (i32.const 4) (i32.load (i32.const 16)) (i32.load (i32.const 20)) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 4))))
    ;; 4. record-metric("requests_processed", 1.0) is ok.
    (call $record_metric (i32.const 1072) (i32.const 18) (f64.const 1.0) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 5))))
    ;; 5. record-event("user_login", "User logged in") is ok.
    (call $record_event (i32.const 1096) (i32.const 10) (i32.const 1112) (i32.const 14) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 6))))
    ;; 6. get-system-info; record cpu-count (@24, u32) and uptime (@48, u64) as metrics.
    (call $get_system_info (i32.const 32))
    (call $record_metric (i32.const 1136) (i32.const 9) (f64.convert_i32_u (i32.load (i32.const 56))) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 7))))
    (call $record_metric (i32.const 1184) (i32.const 14) (f64.convert_i64_u (i64.load (i32.const 80))) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 8))))
    ;; 7. log("verbose", "x") is an err; log its message at error.
    (call $log (i32.const 1064) (i32.const 7) (i32.const 1176) (i32.const 1) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 1)) (then (return (i32.const 9))))
    (call $log (i32.const 1056) (i32.const 5) (i32.load (i32.const 100)) (i32.load (i32.const 104)) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 10))))
    ;; 8. the clock is after 2020-01-01 (1577836800000 ms).
    (if (i64.lt_u (call $get_current_time) (i64.const 1577836800000)) (then (return (i32.const 11))))
    ;; 9. shutdown(some("bye")) is ok; a second one is an err.
    (call $shutdown (i32.const 1) (i32.const 1152) (i32.const 3) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 0)) (then (return (i32.const 12))))
    (call $shutdown (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 96))
    (if (i32.ne (i32.load8_u (i32.const 96)) (i32.const 1)) (then (return (i32.const 13))))
    (i32.const 0)))
