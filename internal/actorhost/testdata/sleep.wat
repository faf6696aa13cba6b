;; Hostile: init sleeps for 10,000 s through WASI poll_oneoff; the host must
;; not let a sleep outlive the call's deadline.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscription at 256: userdata u64, tag u8 = 0 (clock) @8, clock id u32 @16, timeout u64 @24, precision u64 @32, flags u16 @40
  (data (i32.const 280) "\00\a0\72\4e\18\09\00\00") ;; 1e13 ns, little endian
  ;; A bump allocator: the host calls cabi_realloc(0, 0, align, size).
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
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store8 (i32.const 1028) (i32.const 0))
    (i32.const 1024)))
