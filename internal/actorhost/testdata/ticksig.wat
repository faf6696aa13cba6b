;; Exports tick with now-ms as an i32 instead of an i64: the engine must
;; refuse it at compile time, not call it with the wrong arguments.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 8192))
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "troupe:actor/ticker#tick") (param i32 i32 i32 i32) (result i32) (i32.const 1024)))
