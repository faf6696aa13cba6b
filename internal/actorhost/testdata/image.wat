;; An actor whose data segments make a 4-page initial memory image (the
;; smallest the engine shares): "first" at 0, "lastpage" ending page 3.
;; poke(b) writes the byte b at address 0, to show that the instances of one
;; module don't see each other's writes to the image's pages; dirty(n)
;; writes a byte into every 4 KiB page of the first n bytes, to make the
;; instance copy those pages of the image for itself, and spin(n) does the
;; same and then loops forever.
(module
  (memory (export "memory") 5)
  (data (i32.const 0) "first")
  (data (i32.const 262136) "lastpage")
  (global $heap (mut i32) (i32.const 8192))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "poke") (param $b i32)
    (i32.store8 (i32.const 0) (local.get $b)))
  (func $dirty (export "dirty") (param $n i32)
    (local $p i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $n)))
        (i32.store8 (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br $next))))
  (func (export "spin") (param $n i32)
    (call $dirty (local.get $n))
    (loop $forever (br $forever)))
  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store8 (i32.const 1028) (i32.const 0))
    (i32.const 1024)))
