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

/** Bytes `diagnose` looks at: enough to tell WebAssembly text from other text. */
export const DIAGNOSIS_LENGTH = 64;

/**
 * Why the first bytes of something are not a wasm binary, as a clause for a message, and a hint
 * that fits that case (none when there is nothing useful to say).
 */
export function diagnose(head: Uint8Array): { why: string; hint?: string | undefined } {
  if (head.length === 0) return { why: 'it is empty' };
  const magic = head.length >= 4 && MAGIC.every((b, i) => head[i] === b);
  if (magic && head.length < PREAMBLE_LENGTH) return { why: 'it ends inside the WebAssembly preamble' };
  if (magic) {
    const version = (head[4] as number) | ((head[5] as number) << 8);
    const layer = (head[6] as number) | ((head[7] as number) << 8);
    return {
      why: `it is WebAssembly version ${version}, layer ${layer}, which is neither a core module (version 1, layer 0) nor a component (layer 1)`,
    };
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return { why: 'it is gzip-compressed data' };
  const text = Buffer.from(head).toString('latin1').trimStart();
  if (/^(?:\((?:module|component)\b|;;|\(;)/.test(text)) {
    return {
      why: 'it is WebAssembly text (.wat), not a binary',
      hint: 'assemble it first, for example with wat2wasm (or wasm-tools parse for a component)',
    };
  }
  return { why: 'it does not start with \\0asm' };
}

/**
 * Like detectWasm, but throws NOT_WASM with a message naming the input and saying what it is instead
 * (`head` may hold more than the preamble: up to DIAGNOSIS_LENGTH bytes are looked at).
 */
export function requireWasm(head: Uint8Array, name: string, hint?: string): WasmKind {
  const kind = detectWasm(head.subarray(0, PREAMBLE_LENGTH));
  if (kind) return kind;
  const found = diagnose(head.subarray(0, DIAGNOSIS_LENGTH));
  const shown = found.hint ?? hint;
  throw new WasmOciError('NOT_WASM', `${name} is not a WebAssembly binary: ${found.why}`, {
    ...(shown ? { hint: shown } : {}),
  });
}
