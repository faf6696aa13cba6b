;; A test guest importing WASI 0.2 functions the way the engine renames a
;; component's main module's imports: from one host module, each named
;; "<interface>#<function>" (runtimehandler.InstantiateWASI). Its exports
;; forward their parameters verbatim, so tests can hand the host any
;; pointer, length or handle. cabi_realloc bump-allocates from 32768.
(module
  (import "troupe:wasi@0.2/test" "wasi:random/random@0.2.12#get-random-bytes" (func $random_bytes (param i64 i32)))
  (import "troupe:wasi@0.2/test" "wasi:random/random@0.2.12#get-random-u64" (func $random_u64 (result i64)))
  (import "troupe:wasi@0.2/test" "wasi:random/insecure-seed@0.2.12#insecure-seed" (func $seed (param i32)))
  (import "troupe:wasi@0.2/test" "wasi:clocks/monotonic-clock@0.2.12#now" (func $mono_now (result i64)))
  (import "troupe:wasi@0.2/test" "wasi:clocks/wall-clock@0.2.12#now" (func $wall_now (param i32)))
  (import "troupe:wasi@0.2/test" "wasi:cli/stdout@0.2.12#get-stdout" (func $get_stdout (result i32)))
  (import "troupe:wasi@0.2/test" "wasi:cli/stderr@0.2.12#get-stderr" (func $get_stderr (result i32)))
  (import "troupe:wasi@0.2/test" "wasi:io/streams@0.2.12#[method]output-stream.check-write" (func $check_write (param i32 i32)))
  (import "troupe:wasi@0.2/test" "wasi:io/streams@0.2.12#[method]output-stream.blocking-write-and-flush" (func $write (param i32 i32 i32 i32)))
  (import "troupe:wasi@0.2/test" "wasi:io/streams@0.2.12#[resource-drop]output-stream" (func $drop (param i32)))
  ;; Not served: traps when called.
  (import "troupe:wasi@0.2/test" "wasi:cli/environment@0.2.12#get-environment" (func $get_environment (param i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 32768))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))

  (func (export "random-bytes") (param i64 i32) (call $random_bytes (local.get 0) (local.get 1)))
  (func (export "random-u64") (result i64) (call $random_u64))
  (func (export "seed") (param i32) (call $seed (local.get 0)))
  (func (export "mono-now") (result i64) (call $mono_now))
  (func (export "wall-now") (param i32) (call $wall_now (local.get 0)))
  (func (export "get-stdout") (result i32) (call $get_stdout))
  (func (export "get-stderr") (result i32) (call $get_stderr))
  (func (export "check-write") (param i32 i32) (call $check_write (local.get 0) (local.get 1)))
  (func (export "write") (param i32 i32 i32 i32)
    (call $write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "drop") (param i32) (call $drop (local.get 0)))
  (func (export "get-environment") (param i32) (call $get_environment (local.get 0))))
