// Copies the pinned CSS library and its licence into NewBie.Host/wwwroot/css (run after `npm ci` when the pin changes).
const fs = require('fs');
const path = require('path');

const target = path.join(__dirname, '..', 'NewBie.Host', 'wwwroot', 'css');
fs.mkdirSync(target, { recursive: true });
const pico = path.join(__dirname, 'node_modules', '@picocss', 'pico');
fs.copyFileSync(path.join(pico, 'css', 'pico.min.css'), path.join(target, 'pico.min.css'));
fs.copyFileSync(path.join(pico, 'LICENSE.md'), path.join(target, 'pico.LICENSE.md'));
console.log(`copied @picocss/pico ${require(path.join(pico, 'package.json')).version} to ${target}`);
