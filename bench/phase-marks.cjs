// Preloaded by bench/phases.mjs (`node -r`): records when the CLI reaches each phase, in milliseconds since
// the process started (performance.now()), and writes them to stderr as one JSON line at exit. It only
// observes: the first socket connect, every request head written, the first write to stdout, the exit.
const { performance } = require('node:perf_hooks');
const net = require('node:net');

const marks = { main: performance.now(), connect: undefined, requests: [], stdout: undefined, exit: 0 };
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  marks.connect ??= performance.now();
  return connect.apply(this, args);
};
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (chunk, ...rest) {
  if (typeof chunk === 'string' && / HTTP\/1\.1\r\n/.test(chunk))
    marks.requests.push([performance.now(), chunk.slice(0, chunk.indexOf(' '))]);
  return write.call(this, chunk, ...rest);
};
const out = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  marks.stdout ??= performance.now();
  return out(chunk, ...rest);
};
process.on('exit', () => {
  marks.exit = performance.now();
  require('node:fs').writeSync(2, `\n__PHASES__${JSON.stringify(marks)}\n`);
});
