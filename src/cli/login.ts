import { homedir } from 'node:os';
import { WasmOciError } from '../errors.js';
import { login, logout } from '../ops/login.js';
import type { OptionValues } from './args.js';
import { type Context, connectOptions, explicitCredentials, flag, text } from './common.js';
import { printResult } from './output.js';
import { ask } from './prompt.js';

async function credentialsFor(
  options: OptionValues,
  ctx: Context,
): Promise<{ username: string; password: string }> {
  const tty = ctx.io.stdin?.isTTY === true;
  if (flag(options, 'password-stdin') || text(options, 'password') !== undefined) {
    const given = await explicitCredentials(options, ctx);
    if (given) return given;
  }
  if (!tty) {
    throw new WasmOciError('USAGE', 'no password given and stdin is not a terminal', {
      hint: 'pipe it in: echo "$TOKEN" | wasm-to-oci login <registry> -u <name> --password-stdin',
    });
  }
  const username = text(options, 'username') ?? (await ask(ctx.io, 'Username: ', false, ctx.signal));
  const password = await ask(ctx.io, 'Password: ', true, ctx.signal);
  if (!username || !password) throw new WasmOciError('USAGE', 'a username and a password are needed');
  return { username, password };
}

export async function runLogin(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [registry] = args as [string];
  const { username, password } = await credentialsFor(options, ctx);
  // The connection settings of every network command apply (TLS files, proxies, --plain-http);
  // the credentials to check are the ones given here, not the stored ones.
  const { credentials: _stored, ...connect } = await connectOptions(
    { ...options, username: undefined, password: undefined, 'password-stdin': false },
    ctx,
  );
  const result = await login({
    ...connect,
    registry,
    username,
    password,
    env: ctx.env,
    home: ctx.env.HOME ?? homedir(),
    configFile: text(options, 'registry-config'),
    signal: ctx.signal,
  });
  printResult(
    ctx.io,
    flag(options, 'json'),
    [
      ['Login Succeeded', result.registry],
      ['Stored in', result.storedIn],
    ],
    result,
  );
}

export async function runLogout(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [registry] = args as [string];
  const result = await logout({
    registry,
    env: ctx.env,
    home: ctx.env.HOME ?? homedir(),
    configFile: text(options, 'registry-config'),
  });
  printResult(
    ctx.io,
    flag(options, 'json'),
    [
      ['Logged out', result.registry],
      ['Removed from', result.storedIn],
    ],
    result,
  );
}
