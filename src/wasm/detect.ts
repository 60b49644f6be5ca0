import { WasmOciError } from '../errors.js';

export type WasmKind = 'module' | 'component';

/** Length of the WebAssembly preamble: `\0asm`, a u16 version and a u16 layer, little-endian. */
export const PREAMBLE_LENGTH = 8;
const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/**
 * What the preamble says: layer 0 with version 1 is a core module, layer 1 is a component (whose
 * version changed across drafts, so only the layer field is trusted). Anything else is not wasm.
 */
export function detectWasm(preamble: Uint8Array): WasmKind | undefined {
  if (preamble.length < PREAMBLE_LENGTH) return undefined;
  for (let i = 0; i < MAGIC.length; i++) if (preamble[i] !== MAGIC[i]) return undefined;
  const version = (preamble[4] as number) | ((preamble[5] as number) << 8);
  const layer = (preamble[6] as number) | ((preamble[7] as number) << 8);
  if (layer === 0 && version === 1) return 'module';
  if (layer === 1) return 'component';
  return undefined;
}

/** Like detectWasm, but throws NOT_WASM with a message naming the input. */
export function requireWasm(preamble: Uint8Array, name: string): WasmKind {
  const kind = detectWasm(preamble);
  if (kind) return kind;
  const magic = preamble.length >= 4 && MAGIC.every((b, i) => preamble[i] === b);
  throw new WasmOciError(
    'NOT_WASM',
    magic
      ? `${name} has an unsupported WebAssembly version or layer`
      : `${name} is not a WebAssembly binary (it does not start with \\0asm)`,
    {
      hint: 'push takes a compiled .wasm file; a .wat text file must be assembled first (for example with wat2wasm)',
    },
  );
}
