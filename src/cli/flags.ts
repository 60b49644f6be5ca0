/**
 * The library's messages and hints name its options neutrally ("pick one with the `layer` option");
 * the CLI shows the flag that sets each ("pick one with --layer"). Option names without a flag stay
 * as they are.
 */
const FLAGS: Readonly<Record<string, string>> = {
  ca: '--ca-file <pem>',
  cert: '--cert <pem>',
  configFile: '--registry-config',
  created: '--created',
  exclude: '--exclude',
  include: '--include',
  insecure: '--insecure',
  key: '--key <pem>',
  layer: '--layer',
  plainHttp: '--plain-http',
  platform: '--platform',
  preopens: '--dir',
  server: '--server',
  sign: '--sign',
  timeouts: '--timeout <seconds> (or WASM_TO_OCI_TIMEOUT)',
  tlsCaCert: '--tlscacert <pem>',
  verify: '--sign',
};

/** `text` with each "the `<option>` option" replaced by the flag that sets it. */
export function withFlags(text: string): string {
  return text.replace(/the `([A-Za-z]+)` option/g, (phrase, name: string) =>
    Object.hasOwn(FLAGS, name) ? (FLAGS[name] as string) : phrase,
  );
}
