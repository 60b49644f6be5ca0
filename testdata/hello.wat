;; A WASI (preview1) command that prints "Hello from WebAssembly!" and exits 0.
;; testdata/hello.wasm is assembled from this file by scripts/build-testdata.mjs (wabt);
;; a test rebuilds it and checks the committed binary is identical.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 16, len = 24 }; the text at 16; bytes written go to 8.
  (data (i32.const 0) "\10\00\00\00\18\00\00\00")
  (data (i32.const 16) "Hello from WebAssembly!\n")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
