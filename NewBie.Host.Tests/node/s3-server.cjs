// The S3-compatible server of the outputs tests (s3rver, pinned in package.json), started by NewBie.Host.Tests/S3Server.cs:
// `node s3-server.cjs FOLDER` serves FOLDER on a free loopback port and prints {"url": ...} on one line once it listens.
// It stops when its standard input closes, so it never outlives the test process that started it, however that ends.
'use strict';
const S3rver = require('s3rver');

const server = new S3rver({ address: '127.0.0.1', port: 0, directory: process.argv[2], silent: true });
server.run().then(({ address, port }) => {
  process.stdout.write(JSON.stringify({ url: `http://${address}:${port}` }) + '\n');
}, (error) => {
  console.error(error);
  process.exit(1);
});
process.stdin.on('end', () => server.close().finally(() => process.exit(0)));
process.stdin.resume();
