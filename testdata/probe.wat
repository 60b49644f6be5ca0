;; A WASI (preview1) command for the run tests: prints its environment (as "K=V\0" strings), then the
;; first 64 bytes of in.txt from the first preopened directory; exits 4 when that file cannot be opened.
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0: environ count, 4: environ size, 16: environ pointers, 512: environ strings,
  ;; 2048: iovec, 2056: bytes written/read, 2064: opened fd, 2100: the path, 3000: file contents.
  (data (i32.const 2100) "in.txt")
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 2048) (local.get $ptr))
    (i32.store (i32.const 2052) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 2048) (i32.const 1) (i32.const 2056))))
  (func (export "_start")
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $environ_get (i32.const 16) (i32.const 512)))
    (call $print (i32.const 512) (i32.load (i32.const 4)))
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 2100) (i32.const 6) (i32.const 0)
          (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 2064))
      (then (call $proc_exit (i32.const 4))))
    (i32.store (i32.const 2048) (i32.const 3000))
    (i32.store (i32.const 2052) (i32.const 64))
    (drop (call $fd_read (i32.load (i32.const 2064)) (i32.const 2048) (i32.const 1) (i32.const 2056)))
    (call $print (i32.const 3000) (i32.load (i32.const 2056)))))
