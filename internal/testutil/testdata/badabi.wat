;; A module that gets the guest ABI wrong in every way CheckGuestABI must
;; report: testutil's own test of the checker.
(module
  ;; get-env without its return pointer
  (import "theater:simple/runtime" "get-env" (func (param i32 i32)))
  ;; log right, to show correct imports pass
  (import "theater:simple/runtime" "log" (func (param i32 i32 i32 i32 i32)))
  ;; a function the runtime does not have
  (import "theater:simple/runtime" "get-foo" (func (param i32)))
  ;; get-current-time returning i32 instead of i64
  (import "theater:simple/runtime" "get-current-time" (func (result i32)))
  ;; a module the host does not provide
  (import "env" "abort" (func))
  ;; memory not exported
  (memory 1)
  ;; init returning nothing; no cabi_realloc
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32))
  ;; post-return with a result
  (func (export "cabi_post_theater:simple/actor#init") (param i32) (result i32) (i32.const 0))
  ;; the optional tick with now-ms as an i32 instead of an i64
  (func (export "troupe:actor/ticker#tick") (param i32 i32 i32 i32) (result i32) (i32.const 0))
)
