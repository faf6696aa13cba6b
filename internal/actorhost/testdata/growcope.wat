;; Copes with a refused grow: init asks for 1000 more pages (62.5 MiB,
;; within the default 64 MiB limit) and, when memory.grow returns -1,
;; carries on with the one page it has: init returns ok either way, and the
;; state says which ("big" or "small"), so a test can tell that a refusal
;; reached the guest as -1 rather than killing it.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (data (i32.const 2048) "bigsmall")
  ;; init's result at 1024: ok (0), option<state> some (1), list (ptr, len).
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store8 (i32.const 1028) (i32.const 1))
    (if (i32.eq (memory.grow (i32.const 1000)) (i32.const -1))
      (then (i32.store (i32.const 1032) (i32.const 2051)) (i32.store (i32.const 1036) (i32.const 5)))
      (else (i32.store (i32.const 1032) (i32.const 2048)) (i32.store (i32.const 1036) (i32.const 3))))
    (i32.const 1024)))
