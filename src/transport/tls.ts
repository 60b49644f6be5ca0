import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { tlsModule } from './builtins.js';

/**
 * TLS settings shared by every connection of an engine, and the one way connections are made: the
 * certificate is always checked against the registry's own host (never a proxy's), host names are
 * sent as SNI, IP literals are not (RFC 6066) but are still checked against the certificate's IP SANs.
 */

export interface TlsOptions {
  /** Skip TLS certificate verification. */
  insecure?: boolean | undefined;
  /** Extra CA certificates (PEM), trusted in addition to the system's. */
  ca?: string[] | undefined;
  /** Trust only `ca`, not the system's roots (`--tlscacert` for a trust server). */
  caOnly?: boolean | undefined;
  /** Client certificate and key (PEM) for mutual TLS. */
  cert?: string | undefined;
  key?: string | undefined;
}

export interface TlsSettings {
  rejectUnauthorized?: boolean;
  secureContext?: tls.SecureContext;
}

/** The system's CA bundle, where Debian, Fedora and others keep it (Node trusts only its own copy). */
const SYSTEM_CA_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
];

/**
 * One secure context for every connection: the system bundle (a superset of Node's own roots on Debian
 * and Fedora) or Node's roots, then the extra CAs, and the client certificate. Identical bundles
 * (SSL_CERT_FILE and NODE_EXTRA_CA_CERTS often name the system bundle itself) are loaded once: each
 * copy costs ~25 ms of parsing.
 */
export function tlsSettings(options: TlsOptions): TlsSettings {
  const { ca, caOnly, cert, key, insecure } = options;
  let secureContext: tls.SecureContext | undefined;
  if (ca?.length || cert || key || caOnly) {
    let roots: string[] = caOnly ? [] : [...tlsModule().rootCertificates];
    for (const file of caOnly ? [] : SYSTEM_CA_FILES) {
      try {
        roots = [readFileSync(file, 'utf8')];
        break;
      } catch {
        // Not on this system.
      }
    }
    secureContext = tlsModule().createSecureContext({
      ca: [...new Set([...roots, ...(ca ?? [])])],
      cert,
      key,
    });
  }
  return { rejectUnauthorized: !insecure, ...(secureContext ? { secureContext } : {}) };
}

/** Host name without IPv6 brackets. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

/**
 * Connection options that bind the TLS identity to `host`: SNI for names, none for IPs, and the
 * certificate check against `host` even when the socket was handed over (a proxy tunnel), where Node
 * would otherwise check the name of the socket's own peer.
 */
export function identityFor(host: string): Pick<tls.ConnectionOptions, 'servername' | 'checkServerIdentity'> {
  const name = bareHost(host);
  return {
    ...(net.isIP(name) ? {} : { servername: name }),
    checkServerIdentity: (_hostname, cert) => tlsModule().checkServerIdentity(name, cert),
  };
}

/** Opens a TLS connection whose certificate must be `options.host`'s. */
export function connectTls(options: tls.ConnectionOptions, settings: TlsSettings): tls.TLSSocket {
  const host = String(options.host ?? 'localhost');
  return tlsModule().connect({ ...settings, ...options, ...identityFor(host) });
}
