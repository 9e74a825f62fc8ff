// Drives the admin pages in headless Debian chromium with playwright-core (run by AdminBrowserTests, and by hand to
// make the README's screenshot). Throws, and so exits non-zero, on the first thing that is not as expected.
// Env: BASE_URL, CHROMIUM, ADMIN, USER, PASSWORD, USER_KEY (an API key of USER), JOB (a queued job of USER), SCREENSHOT;
// ONLY_SCREENSHOT=1 stops after the screenshot.
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

async function api(method, url, key, body) {
  const response = await fetch(base + url, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: response.status, body: response.headers.get('content-type')?.includes('json') ? await response.json() : null };
}

async function signIn(page, user) {
  await page.goto(`${base}/admin/login`);
  await page.fill('input[name="Form.Username"]', user);
  await page.fill('input[name="Form.Password"]', env('PASSWORD'));
  await Promise.all([page.waitForLoadState('load'), page.click('#sign-in')]);
}

// The page's buttons work once its circuit is up: the nav says "live" then.
const live = (page) => page.waitForSelector('#live.live', { timeout });

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'newbie-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env('CHROMIUM'),
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(timeout);
  try {
    const page = context.pages()[0] ?? await context.newPage();
    const job = env('JOB');

    await page.goto(`${base}/admin`);
    expect(page.url() === `${base}/admin/login`, `an anonymous visitor sent to the login page, not ${page.url()}`);
    await signIn(page, env('ADMIN'));
    expect(page.url() === `${base}/admin`, `the queue page after sign-in, not ${page.url()}`);
    const row = page.locator(`#job-${job}`);
    await row.waitFor();
    expect(await row.locator('.user').innerText() === env('USER'), 'the job\'s user in its row');
    expect(/768×1344/.test(await row.locator('.size').innerText()), 'the job\'s size in its row');
    await live(page);
    step('admin signed in and sees the queued job');

    // A job submitted after the page opened shows up without a reload: the component's timer pushes it.
    const later = await api('POST', '/v1/jobs', env('USER_KEY'), { prompt: 'later', width: 512, height: 768, steps: 20 });
    expect(later.status === 202, `a second submit accepted, not ${later.status}`);
    const laterRow = page.locator(`#job-${later.body.id}`);
    await laterRow.waitFor();
    step('a job submitted later appeared without a reload');

    await page.screenshot({ path: env('SCREENSHOT'), fullPage: true });
    step(`screenshot ${env('SCREENSHOT')}`);
    if (process.env.ONLY_SCREENSHOT === '1') return;

    await laterRow.locator('button.front').click();
    await page.waitForFunction((id) => document.querySelector(`#job-${id} .position`)?.textContent === '1', later.body.id);
    await laterRow.locator('select.priority').selectOption('low');
    await page.waitForFunction((id) => document.querySelector(`#job-${id} .position`)?.textContent === '3', later.body.id);
    step('moved a job to the front, then down to low priority');

    await row.locator('button.cancel').click();
    await row.waitFor({ state: 'detached' });
    expect((await page.locator('#message').innerText()).includes(`Job ${job}: Canceled.`), 'the cancel outcome shown');
    const canceled = await api('GET', `/v1/jobs/${job}`, env('USER_KEY'));
    expect(canceled.body.status === 'canceled', `the job canceled in the API, not ${canceled.body.status}`);
    step('canceled the job from its row');

    await page.click('#pause-worker');
    await page.waitForSelector('#worker-state.paused');
    expect(await page.locator('#worker-state').innerText() === 'paused', 'the worker shown paused');
    await page.click('#resume-worker');
    await page.waitForSelector('#pause-worker');
    expect(await page.locator('#worker-state').innerText() === 'running', 'the worker shown running');
    step('paused and resumed the worker');

    await page.goto(`${base}/admin/users`);
    await live(page);
    await page.fill('#user-name', 'carol');
    await page.selectOption('#user-role', 'user');
    await page.selectOption('#user-priority', 'low');
    await page.fill('#user-max-queued', '3');
    await page.click('#save-user');
    await page.waitForSelector('#message:has-text("User carol created.")');
    expect(await page.locator('#user-carol .max-queued').innerText() === '3', 'carol\'s max queued jobs in her row');
    expect(await page.locator('#user-carol .priority').innerText() === 'low', 'carol\'s priority in her row');
    await page.fill('#key-name', 'laptop');
    await page.locator('#user-carol button.new-key').click();
    const key = (await page.locator('#new-key').innerText()).trim();
    expect(key.startsWith('nb_'), `a raw key shown, not ${key}`);
    expect((await api('GET', '/v1/jobs', key)).status === 200, 'the new key accepted by the API');
    await page.reload();
    await live(page);
    expect(!(await page.content()).includes(key), 'the raw key not shown again');
    await page.locator('#user-carol button.revoke').click();
    await page.waitForSelector('#message:has-text("revoked")');
    expect((await api('GET', '/v1/jobs', key)).status === 401, 'the revoked key refused by the API');
    step('created a user with limits, a key shown once, and revoked it');

    // Signed out, then the plain user: the login page refuses, and with the API's session cookie the pages answer 403.
    // (The circuit hub is open to every signed-in user, for the studio; the admin components check the circuit's user.)
    await context.clearCookies();
    await signIn(page, env('USER'));
    expect(page.url() === `${base}/admin/login`, `a non-admin kept on the login page, not ${page.url()}`);
    expect((await page.locator('#error').innerText()).includes('Only admins'), 'a non-admin refused by the login page');
    const login = await page.request.post(`${base}/v1/auth/login`, { data: { username: env('USER'), password: env('PASSWORD') } });
    expect(login.status() === 200, `the API login of the plain user, not ${login.status()}`);
    const refused = await page.goto(`${base}/admin`);
    expect(refused.status() === 403, `the queue page refused to a non-admin, not ${refused.status()}`);
    expect(await page.locator('#queue').count() === 0, 'no queue shown to a non-admin');
    step('a non-admin is refused');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
