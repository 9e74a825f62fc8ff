// The S3-compatible server of the outputs tests (s3rver, pinned in package.json), started by NewBie.Host.Tests/S3Server.cs:
// `node s3-server.cjs FOLDER` serves FOLDER on a free loopback port and prints {"url": ...} on one line once it listens.
// It stops when its standard input closes, so it never outlives the test process that started it, however that ends.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { pipeline } = require('stream/promises');
const { Transform } = require('stream');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

// s3rver 3.7.1 answers a PUT once the body has been read, not once its file is written (the promise in putObject settles
// on the reading side's 'finish', or at once for a buffer), so a listing right after a PUT could show the object at a
// partial size (seen once in CI: 3580 bytes counted by the store against 2815 listed). Same steps, settled when the file
// is closed: an S3 server answers a PUT only once the object is whole.
FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(require('path').dirname(objectPath), { recursive: true });
  const md5Context = crypto.createHash('md5');
  let size = 0;
  const counted = new Transform({
    transform(chunk, encoding, callback) {
      md5Context.update(chunk, encoding);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const content = Buffer.isBuffer(object.content) ? require('stream').Readable.from([object.content]) : object.content;
  await pipeline(content, counted, fs.createWriteStream(objectPath));
  const md5 = md5Context.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
};

const server = new S3rver({ address: '127.0.0.1', port: 0, directory: process.argv[2], silent: true });
server.run().then(({ address, port }) => {
  process.stdout.write(JSON.stringify({ url: `http://${address}:${port}` }) + '\n');
}, (error) => {
  console.error(error);
  process.exit(1);
});
process.stdin.on('end', () => server.close().finally(() => process.exit(0)));
process.stdin.resume();
