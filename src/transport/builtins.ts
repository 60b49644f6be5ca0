import type * as Https from 'node:https';
import type * as Tls from 'node:tls';

/**
 * Node's TLS modules, loaded on first use: a run that speaks only plain HTTP (a loopback registry) never
 * pays for them (about 10 ms of CPU at start-up on the 2-core machines, measured with hyperfine).
 */
export const tlsModule = (): typeof Tls => process.getBuiltinModule('node:tls');
export const httpsModule = (): typeof Https => process.getBuiltinModule('node:https');
