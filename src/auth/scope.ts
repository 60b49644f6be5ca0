/**
 * Token scopes (`repository:<name>:<actions>`). A scope set is what one token is asked for and cached
 * under: sorted, actions merged per resource, so `pull,push` and `push,pull` share one token.
 */

export type Action = 'pull' | 'push' | 'delete' | '*';

export function repositoryScope(repository: string, actions: readonly Action[]): string {
  return `repository:${repository}:${[...new Set(actions)].sort().join(',')}`;
}

/** Merges scopes on the same resource and sorts the result. */
export function normalizeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    for (const part of scope.split(' ')) {
      if (part === '') continue;
      const last = part.lastIndexOf(':');
      if (last <= 0) {
        byResource.set(part, byResource.get(part) ?? new Set());
        continue;
      }
      const resource = part.slice(0, last);
      const actions = byResource.get(resource) ?? new Set<string>();
      for (const a of part.slice(last + 1).split(',')) if (a) actions.add(a);
      byResource.set(resource, actions);
    }
  }
  return [...byResource.entries()]
    .map(([resource, actions]) => (actions.size ? `${resource}:${[...actions].sort().join(',')}` : resource))
    .sort();
}

export function scopeKey(scopes: readonly string[]): string {
  return normalizeScopes(scopes).join(' ');
}
