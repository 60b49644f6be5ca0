/** Media types of the wasm-in-OCI formats (see FORMATS.md of the design brief). */
export const WasmMediaType = {
  /** The original wasm-to-oci config: the two bytes `{}`. */
  classicConfig: 'application/vnd.wasm.config.v1+json',
  /** The original wasm-to-oci layer: the module's bytes. */
  classicLayer: 'application/vnd.wasm.content.layer.v1+wasm',
  /** CNCF TAG Runtime "Wasm OCI Artifact layout" config. */
  cncfConfig: 'application/vnd.wasm.config.v0+json',
  /** CNCF layout layer. */
  cncfLayer: 'application/wasm',
  /** wasmCloud's legacy layer and the Istio/solo.io layer. */
  moduleLayer: 'application/vnd.module.wasm.content.layer.v1+wasm',
  /** Istio/solo.io config. */
  moduleConfig: 'application/vnd.module.wasm.config.v1+json',
} as const;

/** Layer media types that hold a single wasm module or component. */
export const WASM_LAYER_MEDIA_TYPES: readonly string[] = [
  WasmMediaType.classicLayer,
  WasmMediaType.cncfLayer,
  WasmMediaType.moduleLayer,
];

/** The classic config blob: `{}` and its digest (FORMATS.md of the design brief section 1). */
export const CLASSIC_CONFIG_BYTES = Buffer.from('{}');
export const CLASSIC_CONFIG_DIGEST =
  'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
