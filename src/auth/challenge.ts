/**
 * `WWW-Authenticate` parsing per RFC 7235: a header may hold several challenges, each a scheme followed
 * by a token68 or by comma-separated `name=value` parameters, where values may be quoted strings that
 * contain commas, spaces and escaped quotes (Distribution's mount challenges carry several scopes,
 * space-separated, in one quoted `scope`).
 */

export interface Challenge {
  /** Lower-cased scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Parameters with lower-cased names. */
  params: Record<string, string>;
  /** A token68 credential, for schemes that use one instead of parameters. */
  token68?: string;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}
  get done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): string {
    return this.text[this.pos] ?? '';
  }
  skipSpace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  skipSeparators(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TOKEN_CHAR.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
  /** A quoted string, unescaped; undefined when unterminated. */
  quoted(): string | undefined {
    this.pos++; // opening quote
    let out = '';
    while (!this.done) {
      const c = this.peek();
      this.pos++;
      if (c === '"') return out;
      if (c === '\\' && !this.done) {
        out += this.peek();
        this.pos++;
      } else out += c;
    }
    return undefined;
  }
}

/** Parses a header value into its challenges; malformed parts are skipped, never thrown. */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const s = new Scanner(header);
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  while (!s.done) {
    s.skipSeparators();
    if (s.done) break;
    const start = s.pos;
    const name = s.token();
    if (name === '') {
      s.pos++; // an unexpected character: skip it
      continue;
    }
    s.skipSpace();
    if (s.peek() === '=' && current) {
      // A parameter of the current challenge.
      s.pos++;
      s.skipSpace();
      let value: string | undefined;
      if (s.peek() === '"') value = s.quoted();
      else value = s.token();
      if (value === undefined) break;
      const key = name.toLowerCase();
      if (!Object.hasOwn(current.params, key)) current.params[key] = value;
      continue;
    }
    // A new challenge: scheme, then optionally a token68.
    s.pos = start + name.length;
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    s.skipSpace();
    const token68 = /^([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)/.exec(header.slice(s.pos));
    if (token68?.[1]) {
      current.token68 = token68[1];
      s.pos += token68[1].length;
    }
  }
  return out;
}
