;; A Troupe actor written by hand in WebAssembly text, with no SDK: it proves
;; the guest ABI of wit/theater-simple.wit is plain canonical ABI that any
;; language can target. `make wat` compiles it to actor.wasm beside it.
;;
;; init calls all ten runtime functions and checks what comes back:
;;   1. get-actor-id           must equal the actor id init was given; logged at info
;;   2. get-actor-name         recorded as event "wat-name"
;;   3. get-current-time       recorded as metric "wat_time_ms"
;;   4. get-env WAT_GREETING   logged at info when set, else "no WAT_GREETING set" at warn
;;   5. log at level "loud"    must be an error; its message recorded as event "wat-log-error"
;;   6. get-theater-version    recorded as event "wat-version"
;;   7. get-system-info        metrics "wat_cpu_count" and "wat_memory_total",
;;                             event "wat-hostname"
;;   8. shutdown(some("bye"))
;; (log, record-metric and record-event are the other three.) Any unexpected
;; error result becomes init's error, carrying the host's message.
;;
;; State is one byte, a run counter: none -> [1], [n] -> [n+1], anything else
;; -> error "state must be a single byte". init also fails unless the host
;; called _initialize first.
;;
;; Memory: strings at 16..296, the return area of imports at 1024 (56 bytes,
;; align 8, big enough for system-info), init's result area at 1088 (16 bytes),
;; and a bump heap from 2048 for cabi_realloc, reset by post-return.
(module
  (type $ret (func (param i32)))
  (type $str_ret (func (param i32 i32 i32)))
  (type $str_str_ret (func (param i32 i32 i32 i32 i32)))

  (import "theater:simple/runtime" "get-actor-id" (func $get_actor_id (type $ret)))
  (import "theater:simple/runtime" "get-actor-name" (func $get_actor_name (type $ret)))
  (import "theater:simple/runtime" "get-current-time" (func $get_current_time (result i64)))
  (import "theater:simple/runtime" "get-env" (func $get_env (type $str_ret)))
  (import "theater:simple/runtime" "log" (func $log (type $str_str_ret)))
  (import "theater:simple/runtime" "record-metric" (func $record_metric (param i32 i32 f64 i32)))
  (import "theater:simple/runtime" "record-event" (func $record_event (type $str_str_ret)))
  (import "theater:simple/runtime" "get-theater-version" (func $get_theater_version (type $ret)))
  (import "theater:simple/runtime" "get-system-info" (func $get_system_info (type $ret)))
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))

  (memory (export "memory") 1)

  (global $heap (mut i32) (i32.const 2048))
  (global $initialized (mut i32) (i32.const 0))

  ;; offset  len
  (data (i32.const 16) "info")                    ;; 16    4
  (data (i32.const 20) "warn")                    ;; 20    4
  (data (i32.const 24) "loud")                    ;; 24    4
  (data (i32.const 28) "WAT_GREETING")            ;; 28   12
  (data (i32.const 40) "no WAT_GREETING set")     ;; 40   19
  (data (i32.const 60) "wat-name")                ;; 60    8
  (data (i32.const 68) "wat_time_ms")             ;; 68   11
  (data (i32.const 80) "wat-log-error")           ;; 80   13
  (data (i32.const 96) "wat-version")             ;; 96   11
  (data (i32.const 108) "wat_cpu_count")          ;; 108  13
  (data (i32.const 124) "wat_memory_total")       ;; 124  16
  (data (i32.const 140) "wat-hostname")           ;; 140  12
  (data (i32.const 152) "bye")                    ;; 152   3
  (data (i32.const 156) "_initialize was not called")  ;; 156  26
  (data (i32.const 184) "log accepted the level loud") ;; 184  27
  (data (i32.const 212) "state must be a single byte") ;; 212  27
  (data (i32.const 240) "get-actor-id disagrees with the actor id init was given") ;; 240 55

  (func (export "_initialize")
    (global.set $initialized (i32.const 1)))

  ;; cabi_realloc(old ptr, old size, align, new size) -> ptr: a bump
  ;; allocator; growing copies the old bytes, nothing is freed until
  ;; post-return.
  (func $cabi_realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
    (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    ;; align must be a non-zero power of two
    (if (i32.or (i32.eqz (local.get $align))
                (i32.and (local.get $align) (i32.sub (local.get $align) (i32.const 1))))
      (then unreachable))
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $new_size)))
    ;; wrapped around the 4 GiB address space
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff))
                           (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (if (local.get $old)
      (then
        (memory.copy (local.get $ptr) (local.get $old)
          (select (local.get $old_size) (local.get $new_size)
                  (i32.lt_u (local.get $old_size) (local.get $new_size))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  ;; cabi_post_theater:simple/actor#init: everything init and the host
  ;; allocated is garbage once the host has copied the result out.
  (func (export "cabi_post_theater:simple/actor#init") (param i32)
    (global.set $heap (i32.const 2048)))

  ;; Result area of init: result<tuple<option<list<u8>>>, string>.
  ;; +0 u8 discriminant (0 ok, 1 err); ok: +4 u8 option discriminant, +8 ptr,
  ;; +12 len; err: +4 ptr, +8 len.
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 1088) (i32.const 1))
    (i32.store (i32.const 1092) (local.get $ptr))
    (i32.store (i32.const 1096) (local.get $len))
    (i32.const 1088))

  (func $ok_some (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 1088) (i32.const 0))
    (i32.store (i32.const 1092) (i32.const 1)) ;; u8 1 at +4, zero padding
    (i32.store (i32.const 1096) (local.get $ptr))
    (i32.store (i32.const 1100) (local.get $len))
    (i32.const 1088))

  ;; The import return area at 1024 after a result<_, string> call:
  ;; +0 u8 discriminant, +4 ptr, +8 len of the error message.
  (func $is_err (result i32)
    (i32.load8_u (i32.const 1024)))

  (func $host_err (result i32)
    (call $fail (i32.load (i32.const 1028)) (i32.load (i32.const 1032))))

  (func $streq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "theater:simple/actor#init")
    (param $state_is_some i32) (param $state_ptr i32) (param $state_len i32)
    (param $id_ptr i32) (param $id_len i32)
    (result i32)
    (local $p i32) (local $n i32) (local $count i32)

    (if (i32.eqz (global.get $initialized))
      (then (return (call $fail (i32.const 156) (i32.const 26)))))

    ;; 1. get-actor-id -> string at +0/+4; must match init's param; log it.
    (call $get_actor_id (i32.const 1024))
    (local.set $p (i32.load (i32.const 1024)))
    (local.set $n (i32.load (i32.const 1028)))
    (if (i32.eqz (call $streq (local.get $p) (local.get $n) (local.get $id_ptr) (local.get $id_len)))
      (then (return (call $fail (i32.const 240) (i32.const 55)))))
    (call $log (i32.const 16) (i32.const 4) (local.get $p) (local.get $n) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 2. get-actor-name -> event wat-name
    (call $get_actor_name (i32.const 1024))
    (local.set $p (i32.load (i32.const 1024)))
    (local.set $n (i32.load (i32.const 1028)))
    (call $record_event (i32.const 60) (i32.const 8) (local.get $p) (local.get $n) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 3. get-current-time -> metric wat_time_ms
    (call $record_metric (i32.const 68) (i32.const 11)
      (f64.convert_i64_u (call $get_current_time)) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 4. get-env WAT_GREETING -> option<string>: +0 u8 discriminant, +4 ptr, +8 len
    (call $get_env (i32.const 28) (i32.const 12) (i32.const 1024))
    (if (i32.load8_u (i32.const 1024))
      (then
        (call $log (i32.const 16) (i32.const 4)
          (i32.load (i32.const 1028)) (i32.load (i32.const 1032)) (i32.const 1024)))
      (else
        (call $log (i32.const 20) (i32.const 4) (i32.const 40) (i32.const 19) (i32.const 1024))))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 5. log at level "loud" must fail; its message -> event wat-log-error
    (call $log (i32.const 24) (i32.const 4) (i32.const 16) (i32.const 4) (i32.const 1024))
    (if (i32.eqz (call $is_err))
      (then (return (call $fail (i32.const 184) (i32.const 27)))))
    (local.set $p (i32.load (i32.const 1028)))
    (local.set $n (i32.load (i32.const 1032)))
    (call $record_event (i32.const 80) (i32.const 13) (local.get $p) (local.get $n) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 6. get-theater-version -> event wat-version
    (call $get_theater_version (i32.const 1024))
    (local.set $p (i32.load (i32.const 1024)))
    (local.set $n (i32.load (i32.const 1028)))
    (call $record_event (i32.const 96) (i32.const 11) (local.get $p) (local.get $n) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 7. get-system-info: hostname +0/+4, os-type +8/+12, os-release +16/+20,
    ;;    cpu-count u32 +24, memory-total u64 +32, memory-available +40, uptime +48.
    ;;    Keep what is needed before the area is reused for the next result.
    (call $get_system_info (i32.const 1024))
    (local.set $p (i32.load (i32.const 1024)))
    (local.set $n (i32.load (i32.const 1028)))
    (local.set $count (i32.load (i32.const 1048)))
    (i64.store (i32.const 1016) (i64.load (i32.const 1056)))
    (call $record_metric (i32.const 108) (i32.const 13)
      (f64.convert_i32_u (local.get $count)) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))
    (call $record_metric (i32.const 124) (i32.const 16)
      (f64.convert_i64_u (i64.load (i32.const 1016))) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))
    (call $record_event (i32.const 140) (i32.const 12) (local.get $p) (local.get $n) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; 8. shutdown(some("bye")): (i32 is-some, i32 ptr, i32 len, i32 retptr)
    (call $shutdown (i32.const 1) (i32.const 152) (i32.const 3) (i32.const 1024))
    (if (call $is_err) (then (return (call $host_err))))

    ;; New state: the run counter.
    (local.set $count (i32.const 1))
    (if (local.get $state_is_some)
      (then
        (if (i32.ne (local.get $state_len) (i32.const 1))
          (then (return (call $fail (i32.const 212) (i32.const 27)))))
        (local.set $count (i32.add (i32.load8_u (local.get $state_ptr)) (i32.const 1)))))
    (local.set $p (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 1)))
    (i32.store8 (local.get $p) (local.get $count))
    (call $ok_some (local.get $p) (i32.const 1)))
)
