// Drives the studio in headless Debian chromium with playwright-core (run by StudioBrowserTests, and by hand to make the
// README's screenshots). Throws, and so exits non-zero, on the first thing that is not as expected.
// Env: BASE_URL, CHROMIUM, USER, OTHER (a second plain user), PASSWORD, SCREENSHOTS (a folder).
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const env = (name) => { const v = process.env[name]; if (!v) throw new Error(`${name} is not set`); return v; };
const base = env('BASE_URL');
if (!/^http:\/\/(127\.0\.0\.1|\[::1\]):\d+$/.test(base)) throw new Error(`only loopback URLs: ${base}`);
const step = (text) => console.log(`step: ${text}`);
const expect = (ok, what) => { if (!ok) throw new Error(`expected ${what}`); };
const timeout = 60_000;
const shots = env('SCREENSHOTS');

async function signIn(page, user) {
  await page.goto(`${base}/login`);
  await page.fill('input[name="Form.Username"]', user);
  await page.fill('input[name="Form.Password"]', env('PASSWORD'));
  await Promise.all([page.waitForLoadState('load'), page.click('#sign-in')]);
}

// The page's buttons work once its circuit is up: the nav says "live" then.
const live = (page) => page.waitForSelector('#live.live', { timeout });

async function job(page, id) {
  const response = await page.request.get(`${base}/v1/jobs/${id}`);
  return { status: response.status(), body: response.ok() ? await response.json() : null };
}

async function waitForJob(page, id, status) {
  for (let i = 0; i < 600; i++) {
    const { body } = await job(page, id);
    if (body?.status === status) return body;
    await page.waitForTimeout(50);
  }
  throw new Error(`job ${id} never reached ${status}`);
}

// The names in a zip's central directory (enough of the format to check what a download holds).
function zipEntries(buffer) {
  let end = buffer.length - 22;
  while (end >= 0 && buffer.readUInt32LE(end) !== 0x06054b50) end--;
  expect(end >= 0, 'a zip end-of-central-directory record');
  const count = buffer.readUInt16LE(end + 10);
  let at = buffer.readUInt32LE(end + 16);
  const names = [];
  for (let i = 0; i < count; i++) {
    expect(buffer.readUInt32LE(at) === 0x02014b50, 'a central directory entry');
    const nameLength = buffer.readUInt16LE(at + 28), extra = buffer.readUInt16LE(at + 30), comment = buffer.readUInt16LE(at + 32);
    names.push(buffer.toString('utf8', at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extra + comment;
  }
  return names;
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'newbie-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env('CHROMIUM'),
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(timeout);
  try {
    const page = context.pages()[0] ?? await context.newPage();

    await page.goto(`${base}/`);
    expect(page.url() === `${base}/login`, `an anonymous visitor sent to the sign-in page, not ${page.url()}`);
    await signIn(page, env('USER'));
    expect(page.url() === `${base}/`, `the studio after sign-in, not ${page.url()}`);
    await live(page);
    step('signed in with a password');

    // The XML builder: two characters, general tags with a CJK tag, reordered.
    await page.fill('#c1-n', 'hatsune miku');
    await page.fill('#c1-gender', '1girl');
    await page.fill('#c1-appearance', 'long_hair, twintails');
    await page.fill('#g-style', 'anime_style, 水彩');
    await page.click('#add-character');
    await page.fill('#c2-n', 'kagamine rin');
    await page.fill('#c2-gender', '1girl');
    await page.click('#character-2 .move-up');
    await page.waitForFunction(() => document.querySelector('#c1-n')?.value === 'kagamine rin');
    expect(await page.inputValue('#c2-n') === 'hatsune miku', 'the first character moved down');
    await page.waitForSelector('#token-count');
    expect(/\d+ Gemma tokens of 512/.test(await page.locator('#token-count').innerText()), 'the Gemma token count');
    expect(/\d+ Jina tokens/.test(await page.locator('#jina-count').innerText()), 'the Jina token count');
    await page.screenshot({ path: path.join(shots, 'studio-desktop.png'), fullPage: false });
    step('built an XML prompt with the builder and saw its token counts');

    await page.click('#mode-text');
    const xml = await page.inputValue('#prompt-text');
    expect(xml.startsWith('<character_1>\n  <n>kagamine rin</n>') && xml.includes('<style>anime_style, 水彩</style>'), `the builder's XML in the text editor, not ${xml}`);
    await page.fill('#prompt-text', xml.replace('</gender>', '</gendr>'));
    await page.waitForSelector('#prompt-error');
    const error = await page.locator('#prompt-error').innerText();
    expect(/Malformed XML at line \d+, column \d+/.test(error), `the validator's error with line and column, not ${error}`);
    await page.fill('#prompt-text', xml);
    await page.waitForSelector('#token-count');
    step(`a broken tag shows "${error}"; fixed, the token count is back`);

    await page.selectOption('#size', '512x512');
    await page.fill('#steps', '15');
    await page.check('#seed-fixed');
    await page.fill('#seed', '1234');
    await page.click('#submit');
    await page.waitForSelector('#submitted code');
    const first = (await page.locator('#submitted code').innerText()).trim();
    const row = page.locator(`#job-${first}`);
    await page.waitForFunction((id) => Number(document.querySelector(`#job-${id} progress`)?.value) > 0, first);
    step('submitted; the progress bar moves');
    await row.waitFor({ state: 'detached' });
    await page.waitForSelector(`#done-${first}[data-status="succeeded"] img`);
    step('the progress reached done and the job moved to the finished strip');
    const submitted = await waitForJob(page, first, 'succeeded');
    expect(submitted.params.prompt === xml && submitted.params.seed === 1234 && submitted.params.width === 512, 'the job holds the prompt and parameters sent');

    await Promise.all([page.waitForURL(`${base}/gallery?job=${first}`), page.click(`#done-${first}`)]);
    await live(page);
    await page.waitForSelector('#detail');
    expect(await page.locator('#detail-seed').innerText() === '1234', 'the image seed in the full view');
    expect((await page.locator('#detail-prompt').innerText()).includes('水彩'), 'the CJK prompt in the full view');
    await page.waitForFunction(() => document.querySelector('#full-image')?.naturalWidth === 512);
    step('opened the image in the gallery with every parameter');

    await page.click('#run-again');
    await page.waitForSelector('#gallery-message[data-job]');
    const again = await page.locator('#gallery-message').getAttribute('data-job');
    expect(again && again !== first, 'a new job for "run again"');
    const rerun = await waitForJob(page, again, 'succeeded');
    expect(rerun.params.seed === 1234 && rerun.params.steps === 15 && rerun.params.prompt === xml, 'run again keeps the seed and every parameter');
    await page.click('#variation');
    await page.waitForFunction((id) => { const j = document.querySelector('#gallery-message')?.dataset.job; return j && j !== id; }, again);
    const variation = await page.locator('#gallery-message').getAttribute('data-job');
    const varied = await waitForJob(page, variation, 'succeeded');
    expect(varied.params.seed !== 1234 && varied.params.prompt === xml, 'a variation has a new seed');
    step('ran it again with its seed, and a variation with a new one');

    await page.click('#delete-job');
    await page.waitForSelector('#gallery-message:has-text("deleted")');
    await page.locator(`#image-${first}-0`).waitFor({ state: 'detached' });
    expect((await job(page, first)).status === 404, 'the deleted job gone from the API');
    step('deleted the first job');

    await page.locator(`#image-${again}-0 input.select`).check();
    await page.locator(`#image-${variation}-0 input.select`).check();
    // The selection lives in the page's circuit: the link names both images once the server has rendered the change.
    await page.waitForFunction(([a, b]) => { const h = document.querySelector('#zip')?.getAttribute('href') ?? ''; return h.includes(a) && h.includes(b); }, [again, variation]);
    const zipUrl = await page.locator('#zip').getAttribute('href');
    const zip = await page.request.get(`${base}${zipUrl}`);
    expect(zip.status() === 200 && zip.headers()['content-type'] === 'application/zip', `a zip, not ${zip.status()}`);
    const entries = zipEntries(await zip.body()).sort();
    const wanted = [`newbie-${again}-0.png`, `newbie-${variation}-0.png`].sort();
    expect(JSON.stringify(entries) === JSON.stringify(wanted), `zip entries ${wanted}, not ${entries}`);
    await page.screenshot({ path: path.join(shots, 'studio-gallery.png'), fullPage: false });
    step('downloaded a zip of two images');

    await page.goto(`${base}/usage`);
    await live(page);
    expect((await page.locator('#images-today-text').innerText()).startsWith('3 of'), 'three images counted today');
    step('my usage shows the images of today');

    // The editor opens with the last prompt and settings submitted.
    await page.goto(`${base}/`);
    await live(page);
    expect(await page.inputValue('#c1-n') === 'kagamine rin' && await page.inputValue('#size') === '512x512', 'the last prompt and size remembered');
    expect(await page.inputValue('#seed') === '1234' && await page.inputValue('#steps') === '15', 'the last seed and steps remembered');
    step('the editor remembers the last prompt and settings');
    await page.selectOption('#size', 'custom');
    await page.fill('#width', '2048');
    await page.fill('#height', '2048');
    await page.fill('#count', '4');
    await page.click('#submit');
    await page.waitForSelector('#submit-error');
    const refused = await page.locator('#submit-error').innerText();
    expect(refused.includes('storage_cap_exceeded'), `the storage cap's refusal, not ${refused}`);
    step('the storage cap refuses a submit');

    // A long job cancelled from its row: it leaves the queue and shows as canceled among the finished ones.
    await page.selectOption('#size', '512x512');
    await page.fill('#count', '1');
    await page.fill('#steps', '100');
    await page.click('#submit');
    await page.waitForSelector('#submitted code');
    const long = (await page.locator('#submitted code').innerText()).trim();
    await page.locator(`#job-${long} button.cancel`).click();
    await page.locator(`#job-${long}`).waitFor({ state: 'detached' });
    await page.waitForSelector(`#done-${long}[data-status="canceled"]`);
    step('cancelled a job from my queue');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/`);
    await live(page);
    await page.screenshot({ path: path.join(shots, 'studio-phone.png'), fullPage: false });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 0, `no sideways scrolling at phone width, not ${overflow}px`);
    await page.setViewportSize({ width: 1280, height: 900 });
    step('phone width fits');

    // The second user sees none of it: pages, the image route and the zip.
    await context.clearCookies();
    await signIn(page, env('OTHER'));
    await page.goto(`${base}/gallery`);
    await live(page);
    expect(await page.locator('#gallery-empty').count() === 1 && await page.locator('#gallery .thumb').count() === 0, 'an empty gallery for the other user');
    await page.goto(`${base}/`);
    await live(page);
    expect(await page.locator('#queue-empty').count() === 1 && await page.locator('#recent .thumb').count() === 0, 'no jobs of the first user');
    expect((await page.request.get(`${base}/v1/jobs/${again}/images/0?size=thumb`)).status() === 404, 'the thumbnail refused to the other user');
    expect((await page.request.get(`${base}/v1/jobs/${again}/images/0`)).status() === 404, 'the image refused to the other user');
    expect((await page.request.get(`${base}/v1/me/images.zip?image=${again}`)).status() === 404, 'the zip refused to the other user');
    step('a second user sees none of the first one\'s jobs or images');

    await context.clearCookies();
    await page.goto(`${base}/gallery`);
    expect(page.url() === `${base}/login`, `anonymous sent to sign in, not ${page.url()}`);
    const hub = await page.evaluate(async () => (await fetch('/_blazor/negotiate?negotiateVersion=1', { method: 'POST' })).status);
    expect(hub === 401, `the circuit hub refused to an anonymous visitor, not ${hub}`);
    step('anonymous visitors get neither the pages nor the circuit hub');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
