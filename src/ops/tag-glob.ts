import { WasmOciError } from '../errors.js';

/**
 * Shell-style patterns on tags, for selecting the tags of a repository: `*` (any run of characters),
 * `?` (one character), `[abc]`, `[a-z]` and `[!abc]` or `[^abc]` (one character in or not in the set),
 * `\x` (the character x itself). A tag has no `/`, so unlike a path glob `*` crosses nothing.
 * Written here rather than taken from node's `path.matchesGlob`, which is experimental (and warns) in
 * Node 20 and follows path rules.
 */

/** Longest pattern taken: twice a tag's 128 characters leaves room for classes and escapes. */
const MAX_PATTERN_LENGTH = 256;

/** The characters a tag is made of (`[\w][\w.-]*`): a literal outside them could match no tag. */
const TAG_CHAR = /^[A-Za-z0-9_.-]$/;

type Token = { kind: 'star' } | { kind: 'one'; test: (c: string) => boolean };

/** A checked pattern, compiled once and matched against many tags. */
export interface TagPattern {
  readonly source: string;
  matches(tag: string): boolean;
}

function refuse(what: string, pattern: string, why: string): WasmOciError {
  return new WasmOciError('USAGE', `pattern ${JSON.stringify(pattern)} of the \`${what}\` option ${why}`, {
    hint: 'patterns are shell globs on the tag: * ? [a-z] [!x], \\ before a character takes it as itself',
  });
}

/** Reads a `[...]` class starting at `start` (the `[`); returns its test and the index after `]`. */
function readClass(
  pattern: string,
  start: number,
  what: string,
): { test: (c: string) => boolean; end: number } {
  let i = start + 1;
  const negated = pattern[i] === '!' || pattern[i] === '^';
  if (negated) i++;
  const ranges: Array<[string, string]> = [];
  let first = true;
  for (;;) {
    let c = pattern[i];
    if (c === undefined) throw refuse(what, pattern, 'has a [ without its ]');
    // A ] right after [ (or [!) is a member, as in the shell.
    if (c === ']' && !first) break;
    first = false;
    if (c === '\\') {
      i++;
      c = pattern[i];
      if (c === undefined) throw refuse(what, pattern, 'ends in a lone \\');
    }
    let high = c;
    if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      i += 2;
      let h = pattern[i] as string;
      if (h === '\\') {
        i++;
        const escaped = pattern[i];
        if (escaped === undefined) throw refuse(what, pattern, 'ends in a lone \\');
        h = escaped;
      }
      high = h;
      if (high < c) throw refuse(what, pattern, `has the range ${c}-${high}, which runs backwards`);
    }
    ranges.push([c, high]);
    i++;
  }
  const inSet = (ch: string) => ranges.some(([low, high]) => ch >= low && ch <= high);
  return { test: negated ? (ch) => !inSet(ch) : inSet, end: i + 1 };
}

/**
 * Checks and compiles a pattern; `what` names it in errors ("include", "exclude"). Refused: an empty
 * pattern, a leading `!` (no negation: exclude the tags instead), an unclosed `[`, a trailing `\`, a
 * backwards range, and a literal character no tag can hold.
 */
export function tagPattern(pattern: string, what: string): TagPattern {
  if (pattern === '') throw refuse(what, pattern, 'is empty');
  if (pattern.length > MAX_PATTERN_LENGTH)
    throw refuse(what, pattern.slice(0, 40), `is longer than ${MAX_PATTERN_LENGTH} characters`);
  if (pattern.startsWith('!')) throw refuse(what, pattern, 'starts with !, and patterns are not negated');
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
      i++;
    } else if (c === '?') {
      tokens.push({ kind: 'one', test: () => true });
      i++;
    } else if (c === '[') {
      const { test, end } = readClass(pattern, i, what);
      tokens.push({ kind: 'one', test });
      i = end;
    } else {
      let literal = c;
      if (c === '\\') {
        const next = pattern[i + 1];
        if (next === undefined) throw refuse(what, pattern, 'ends in a lone \\');
        literal = next;
        i++;
      }
      if (!TAG_CHAR.test(literal))
        throw refuse(what, pattern, `holds ${JSON.stringify(literal)}, which no tag can hold`);
      tokens.push({ kind: 'one', test: (ch) => ch === literal });
      i++;
    }
  }
  return { source: pattern, matches: (tag) => matchTokens(tokens, tag) };
}

/**
 * Wildcard matching with one backtrack point (the last `*`): at most pattern length × tag length
 * steps, never exponential.
 */
function matchTokens(tokens: readonly Token[], text: string): boolean {
  let t = 0;
  let s = 0;
  let star = -1;
  let resume = 0;
  while (s < text.length) {
    const token = tokens[t];
    if (token?.kind === 'one' && token.test(text[s] as string)) {
      t++;
      s++;
    } else if (token?.kind === 'star') {
      star = t++;
      resume = s;
    } else if (star >= 0) {
      t = star + 1;
      s = ++resume;
    } else return false;
  }
  while (tokens[t]?.kind === 'star') t++;
  return t === tokens.length;
}

/** Which tags a selection keeps: those matching an include pattern (any tag without one) and no exclude pattern. */
export interface TagSelection {
  include?: readonly string[] | undefined;
  exclude?: readonly string[] | undefined;
}

/** Compiles a selection (every pattern checked at once, before any work) into a test on tags. */
export function tagFilter(selection: TagSelection): (tag: string) => boolean {
  const include = (selection.include ?? []).map((p) => tagPattern(p, 'include'));
  const exclude = (selection.exclude ?? []).map((p) => tagPattern(p, 'exclude'));
  return (tag) =>
    (include.length === 0 || include.some((p) => p.matches(tag))) && !exclude.some((p) => p.matches(tag));
}
