/**
 * `wasm-to-oci/wasm`: WebAssembly as OCI content. Detection and inspection of binaries (modules and
 * components: imports, exports, WIT worlds), the media types, the two artifact layouts (classic and
 * CNCF) and packing a module into a store, and choosing the wasm layer or index entry of an artifact.
 */
export { classicConfig, classicTitle, type PackedManifest, packClassic } from './classic.js';
export { type CncfConfig, type CncfOptions, cncfConfig, creationTime, packCncf } from './cncf.js';
export { detectWasm, PREAMBLE_LENGTH, requireWasm, type WasmKind } from './detect.js';
export {
  importsByModule,
  inspectWasm,
  inspectWasmFile,
  type WasmExport,
  type WasmImport,
  type WasmInfo,
} from './inspect.js';
export { WASM_LAYER_MEDIA_TYPES, WasmMediaType } from './mediatypes.js';
export {
  checkFormat,
  checkModuleFile,
  IN_MEMORY_LIMIT,
  type Packed,
  type PackFormat,
  type PackOptions,
  packModule,
} from './pack.js';
export { type SelectOptions, selectIndexEntry, selectWasmLayer } from './select.js';
