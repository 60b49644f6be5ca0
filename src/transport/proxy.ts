import type * as https from 'node:https';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { WasmOciError } from '../errors.js';
import { isLoopback } from '../reference.js';
import { httpModule, httpsModule, tlsModule } from './builtins.js';
import { timeoutError } from './errors.js';
import { bareHost, identityFor, type TlsSettings } from './tls.js';
import type { Timeouts } from './types.js';

/**
 * Proxy selection from the environment, as Go's net/http (and so Docker and oras) does it:
 * `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http URLs (upper or lower case), `NO_PROXY` a comma
 * list of hosts, domains (`.example.com` or `example.com` match subdomains too), `host:port`, or `*`.
 * Loopback hosts never go through a proxy.
 */
export function proxyFor(url: URL, env: Readonly<Record<string, string | undefined>>): URL | undefined {
  if (isLoopback(url.host)) return undefined;
  const raw =
    url.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!raw) return undefined;
  if (bypassed(url, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  try {
    const proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
    return proxy.protocol === 'http:' ? proxy : undefined;
  } catch {
    return undefined;
  }
}

function bypassed(url: URL, noProxy: string): boolean {
  const host = bareHost(url.hostname).toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (let entry of noProxy.split(/[,\s]+/)) {
    entry = entry.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    const portMatch = /^(.*):(\d+)$/.exec(entry);
    if (portMatch && !entry.includes(']') && (portMatch[1] ?? '').split(':').length === 1) {
      entry = portMatch[1] ?? '';
      entryPort = portMatch[2];
    }
    entry = entry.replace(/^\*?\./, '').replace(/^\[|\]$/g, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** `Proxy-Authorization` for a proxy URL with user info. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username) return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

type TunnelAgentClass = new (proxy: URL, settings: TlsSettings, timeouts: Timeouts) => https.Agent;
let TunnelAgent: TunnelAgentClass | undefined;

/**
 * An https agent whose connections are TLS over a CONNECT tunnel through an HTTP proxy. The TLS
 * identity is the registry's: its host name as SNI and for the certificate check, its IP literal for
 * the check alone; the proxy's own name never stands in for it. (Its class is made on first use, so
 * that node:https loads only when something speaks TLS.)
 */
export function tunnelAgent(proxy: URL, settings: TlsSettings, timeouts: Timeouts): https.Agent {
  TunnelAgent ??= defineTunnelAgent();
  return new TunnelAgent(proxy, settings, timeouts);
}

function defineTunnelAgent(): TunnelAgentClass {
  return class TunnelAgent extends httpsModule().Agent {
    constructor(
      private readonly proxy: URL,
      private readonly settings: TlsSettings,
      private readonly timeouts: Timeouts,
    ) {
      super({ keepAlive: true, ...settings });
    }

    override createConnection(
      options: https.RequestOptions,
      callback?: (err: Error | null, stream: Duplex) => void,
    ): undefined {
      const host = bareHost(String(options.hostname ?? options.host ?? ''));
      const target = `${net.isIPv6(host) ? `[${host}]` : host}:${options.port ?? 443}`;
      const auth = proxyAuthorization(this.proxy);
      const proxyUrl = new URL(this.proxy.href);
      let done = false;
      const finish = (err: Error | null, stream: Duplex) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        callback?.(err, stream);
      };
      const connect = httpModule().request({
        host: this.proxy.hostname,
        port: this.proxy.port || 80,
        method: 'CONNECT',
        path: target,
        headers: { host: target },
      });
      // Set after the request is made, so node:http's debug log of new connections never shows it.
      if (auth) connect.setHeader('proxy-authorization', auth);
      // Connecting to the proxy, then its answer to CONNECT, each bounded like any connection and answer.
      let timer = setTimeout(() => {
        connect.destroy();
        finish(timeoutError('connect', proxyUrl, this.timeouts.connectMs), connect.socket as Duplex);
      }, this.timeouts.connectMs);
      connect.once('socket', (socket) => {
        const answer = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            connect.destroy();
            finish(timeoutError('headers', proxyUrl, this.timeouts.headersMs), socket);
          }, this.timeouts.headersMs);
        };
        if (socket.connecting) socket.once('connect', answer);
        else answer();
      });
      connect.once('connect', (res, socket) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          finish(
            new WasmOciError(
              'NETWORK',
              `proxy ${this.proxy.host} refused to connect to ${target}: HTTP ${res.statusCode}`,
              res.statusCode === 407
                ? {
                    hint: 'the proxy wants credentials: put them in its URL (http://user:password@proxy:port)',
                  }
                : {},
            ),
            socket,
          );
          return;
        }
        const secure = tlsModule().connect({ ...this.settings, socket, host, ...identityFor(host) });
        const handshake = setTimeout(() => {
          secure.destroy(timeoutError('handshake', new URL(`https://${target}`), this.timeouts.handshakeMs));
        }, this.timeouts.handshakeMs);
        secure.once('secureConnect', () => clearTimeout(handshake));
        secure.once('close', () => clearTimeout(handshake));
        finish(null, secure);
      });
      connect.once('error', (err) => finish(err, connect.socket as Duplex));
      connect.end();
      return undefined;
    }
  };
}
