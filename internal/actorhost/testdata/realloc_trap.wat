;; Hostile: cabi_realloc traps.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store8 (i32.const 1028) (i32.const 0))
    (i32.const 1024)))
