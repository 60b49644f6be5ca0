import type * as Http from 'node:http';
import type * as Https from 'node:https';
import type * as Tls from 'node:tls';

/**
 * Node's HTTP and TLS modules, loaded on first use: a run that speaks only plain HTTP (a loopback
 * registry) never pays for the TLS ones (about 10 ms of CPU at start-up on the 2-core machines,
 * measured with hyperfine), and one without a proxy never loads node:http (about 7 ms of CPU):
 * its requests go through raw-client.ts.
 */
export const tlsModule = (): typeof Tls => process.getBuiltinModule('node:tls');
export const httpsModule = (): typeof Https => process.getBuiltinModule('node:https');
export const httpModule = (): typeof Http => process.getBuiltinModule('node:http');
