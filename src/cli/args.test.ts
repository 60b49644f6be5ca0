import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CommandSpec, parseCommand, suggest } from './args.js';
import { commandHelp, programHelp } from './help.js';

const spec: CommandSpec = {
  name: 'pull',
  summary: 'pull things',
  arguments: [{ name: 'reference', description: 'what' }],
  options: [
    {
      name: 'out',
      short: 'o',
      type: 'string',
      value: '<file>',
      default: 'module.wasm',
      description: 'where',
    },
    { name: 'json', type: 'boolean', description: 'json' },
    { name: 'annotation', type: 'string', multiple: true, description: 'repeatable' },
  ],
};

describe('parseCommand', () => {
  it('parses positionals, long and short options, and applies defaults', () => {
    const plain = parseCommand(spec, ['r']);
    assert.deepEqual(plain.args, ['r']);
    assert.deepEqual({ ...plain.options }, { out: 'module.wasm' });
    const parsed = parseCommand(spec, [
      '-o',
      'x.wasm',
      'r',
      '--json',
      '--annotation',
      'a=1',
      '--annotation=b=2',
    ]);
    assert.deepEqual(parsed.args, ['r']);
    assert.equal(parsed.options.out, 'x.wasm');
    assert.equal(parsed.options.json, true);
    assert.deepEqual(parsed.options.annotation, ['a=1', 'b=2']);
    assert.equal(parseCommand(spec, ['r', '--out=y']).options.out, 'y');
  });
  it('treats everything after -- as positionals', () => {
    assert.throws(() => parseCommand(spec, ['--', 'r', '--json']), /too many arguments: '--json'/);
  });
  it('lets --help through without requiring arguments', () => {
    assert.equal(parseCommand(spec, ['--help']).options.help, true);
    assert.equal(parseCommand(spec, ['-h']).options.help, true);
  });
  const errors: Array<[string[], RegExp]> = [
    [[], /missing required argument 'reference'/],
    [['a', 'b'], /too many arguments: 'b'/],
    [['r', '--jsn'], /unknown option '--jsn' \(did you mean --json\?\)/],
    [['r', '--zzzzzz'], /^unknown option '--zzzzzz'$/],
    [['r', '--out'], /--out/],
    [['r', '--json=yes'], /json/],
  ];
  for (const [argv, message] of errors) {
    it(`rejects ${JSON.stringify(argv)} as a usage error`, () => {
      assert.throws(
        () => parseCommand(spec, argv),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.code, 'USAGE');
          assert.match(err.message, message);
          assert.equal(err.hint, 'see: wasm-to-oci pull --help');
          return true;
        },
      );
    });
  }
});

describe('help', () => {
  it('renders every argument and option of a command from its spec', () => {
    const help = commandHelp(spec);
    assert.match(help, /^Usage: wasm-to-oci pull \[options\] <reference>\n/);
    assert.match(help, /-o, --out <file> +where \(default: module\.wasm\)/);
    assert.match(help, / {6}--json +json/);
    assert.match(help, /-h, --help +show help/);
  });
  it('lists the commands', () => {
    const help = programHelp([spec], '1.2.3');
    assert.match(help, /^wasm-to-oci 1\.2\.3/);
    assert.match(help, /\n {2}pull +pull things\n/);
  });
  it('suggests near names only', () => {
    assert.equal(suggest('pul', ['push', 'pull']), 'pull');
    assert.equal(suggest('xyz', ['push', 'pull']), undefined);
  });
});
