;; Hostile: a data segment that ends past the declared memory. Instantiation
;; fails, whether or not the engine builds images of initial memories (this
;; module never gets one).
(module
  (memory (export "memory") 1)
  (data (i32.const 65534) "xyz")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.const 8192))
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (i32.const 1024)))
