import { WasmOciError } from './errors.js';

/**
 * An artifact reference `host[:port]/repository[:tag][@digest]`, following the distribution
 * reference grammar. Unlike Docker, the registry host is never implied: wasm-to-oci has no default
 * registry, so `hello:v1` is an error with a hint rather than a silent trip to Docker Hub.
 */
export interface Reference {
  /** Registry host as typed, with its port: `localhost:5000`, `ghcr.io`, `docker.io`. */
  readonly registry: string;
  /** Repository path inside the registry: `wasm-to-oci`, `library/hello`. */
  readonly repository: string;
  /** Tag, when the reference names one. */
  readonly tag?: string | undefined;
  /** Digest, when the reference names one (`sha256:<hex>`). */
  readonly digest?: string | undefined;
}

export interface ParsedReference extends Reference {
  /** True when the input named neither tag nor digest and `latest` was filled in. */
  readonly defaultedTag: boolean;
}

export const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN_RE = new RegExp(`^${HOST}(?::[0-9]+)?$`);
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/**
 * The host must also be one a URL can hold (WHATWG rules: `127.0.0.127.0.0.1` looks like a domain to
 * the distribution grammar but is a malformed IPv4 address to a URL parser).
 */
function isUrlHost(registry: string): boolean {
  try {
    return new URL(`https://${registry}/`).host !== '';
  } catch {
    return false;
  }
}

/** Docker's rule for telling a registry host from the first path component. */
function looksLikeHost(component: string): boolean {
  return (
    component.includes('.') ||
    component.includes(':') ||
    component === 'localhost' ||
    component.startsWith('[') ||
    component !== component.toLowerCase()
  );
}

function invalid(input: string, why: string, hint?: string): WasmOciError {
  return new WasmOciError('INVALID_REFERENCE', `invalid reference "${input}": ${why}`, {
    hint: hint ?? 'a reference looks like host[:port]/repository[:tag][@sha256:<digest>]',
  });
}

/**
 * Parses a reference. Without a tag or digest the tag defaults to `latest` and `defaultedTag` is set,
 * so a command can tell the user. `docker.io/hello` is normalised to `docker.io/library/hello`.
 */
export function parseReference(input: string): ParsedReference {
  const text = input.trim();
  if (text === '') throw invalid(input, 'it is empty');
  if (/\s/.test(text)) throw invalid(input, 'it contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw invalid(
      input,
      'a reference has no URL scheme',
      `drop the scheme: ${text.replace(/^[^:]+:\/\//, '')}`,
    );
  }

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw invalid(input, `"${digest}" is not a digest`);
  }

  const slash = rest.indexOf('/');
  const first = slash === -1 ? rest : rest.slice(0, slash);
  if (
    slash === -1 &&
    DOMAIN_RE.test(rest) &&
    /(?::[0-9]+$|^localhost$|^\[|^\d+\.\d+\.\d+\.\d+$)/.test(rest)
  ) {
    // `127.0.0.1:5000`, `localhost`: a registry alone.
    throw invalid(input, 'the repository is missing', `name one in the registry: ${rest}/<name>:<tag>`);
  }
  if (slash === -1 && /\.(?:wasm|wat|wit|json|tar|tgz|gz)$/i.test(rest)) {
    throw invalid(
      input,
      'it looks like a file name, not a reference',
      'a reference looks like host[:port]/repository[:tag], for example localhost:5000/hello:v1',
    );
  }
  if (slash === -1 || !looksLikeHost(first)) {
    throw invalid(
      input,
      'the registry host is missing',
      `name the registry, for example localhost:5000/${rest} or ghcr.io/<owner>/${rest.split('/').pop() ?? rest}`,
    );
  }
  const registry = first;
  if (!DOMAIN_RE.test(registry) || !isUrlHost(registry))
    throw invalid(input, `"${registry}" is not a valid registry host`);
  let path = rest.slice(slash + 1);

  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!isValidTag(tag)) {
      throw invalid(
        input,
        `"${tag}" is not a valid tag`,
        'a tag has up to 128 letters, digits, "_", "." and "-"',
      );
    }
  }
  if (path === '') throw invalid(input, 'the repository name is missing');
  if (!REPOSITORY_RE.test(path)) {
    throw invalid(
      input,
      `"${path}" is not a valid repository name`,
      'repository names are lowercase letters and digits, separated by ".", "_", "__", "-" or "/"',
    );
  }
  if (registry === 'docker.io' || registry === 'index.docker.io') {
    if (!path.includes('/')) path = `library/${path}`;
  }
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  const defaultedTag = tag === undefined && digest === undefined;
  return { registry, repository: path, tag: defaultedTag ? DEFAULT_TAG : tag, digest, defaultedTag };
}

/** `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  let out = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The host that serves the registry API; Docker Hub's API lives on another host than its name. */
export function registryApiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/** The host name without port or IPv6 brackets. */
export function hostName(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon === -1 ? registry : registry.slice(0, colon);
}

/** Loopback hosts: `localhost`, `127.0.0.0/8` and `::1`. */
export function isLoopback(registry: string): boolean {
  const host = hostName(registry).toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
