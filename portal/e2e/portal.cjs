// The portal's browser walk-through, run by `gateway/tests/it/portal.rs` against a real
// `brain serve`: headless Chromium (Debian's) through playwright-core. Parameters come as JSON
// in PORTAL_E2E. Every step prints `ok <step>`; the last line is `RESULT <json>`. Any failure
// saves `failure.png` next to the screenshots and exits 1.
'use strict';

const path = require('path');
const fs = require('fs');

const P = JSON.parse(process.env.PORTAL_E2E);
const { chromium } = require(path.join(P.modules, 'playwright-core'));

const WIDTHS = [1280, 390];
const result = {};
let current = null;

function ok(step) {
  console.log(`ok ${step}`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60000 });
}

async function open(page, url) {
  await page.goto(P.portal + url);
  await hydrated(page);
}

async function login(context, email) {
  const page = await context.newPage();
  await open(page, '/login');
  await page.fill('#email', email);
  await page.fill('#password', P.password);
  await Promise.all([
    page.waitForURL(/\/dashboard$/, { timeout: 30000 }),
    page.click('button[type=submit]'),
  ]);
  await hydrated(page);
  return page;
}

async function shoot(page, name, url) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    if (url) await open(page, url);
    await page.screenshot({ path: path.join(P.screenshots, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function main() {
  for (const stale of ['failure.png', 'failure.html']) fs.rmSync(path.join(P.screenshots, stale), { force: true });
  const browser = await chromium.launch({
    executablePath: P.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(30000);

    // Login page (before signing in), then sign in with the password.
    {
      const page = await context.newPage();
      current = page;
      await shoot(page, 'login', '/login');
      await page.close();
    }
    const page = await login(context, P.owner);
    current = page;
    ok('login');

    // Connect WordPress against the local fake platform, test it.
    await open(page, '/dashboard/connectors');
    check(await page.locator('.connector-card').count() === 13, 'expected 13 connector cards');
    await Promise.all([page.waitForURL(/connectors\/wordpress$/), page.click('a.connector-card[href$="/wordpress"]')]);
    await hydrated(page);
    await page.fill('#cred-site_url', P.wordpress);
    await page.fill('#cred-username', 'admin');
    await page.fill('#cred-application_password', 'abcd efgh ijkl mnop');
    await page.click('button#connect');
    await page.waitForSelector('.connection-status .status-connected');
    check(await page.inputValue('#cred-application_password') === '', 'a secret was echoed back');
    await page.click('button#test');
    await page.waitForSelector('.test-outcome .note.ok');
    ok('connect-wordpress');

    // Its posts are charted on the dashboard, server-side SVG; a disconnected widget links.
    await open(page, '/dashboard');
    const chart = page.locator('.widget[data-connector="wordpress"] svg.chart');
    await chart.waitFor();
    const label = await chart.getAttribute('aria-label');
    check(/Published posts per day: 12 posts/.test(label), `chart label: ${label}`);
    check(await page.locator('.widget[data-connector="wordpress"] svg.chart rect').count() === 14, 'one bar per day');
    check(await page.locator('.widget-disconnected[data-connector="shopify"] a[href="/dashboard/connectors/shopify"]').count() === 1,
      'the disconnected Shopify widget links to its connector');
    // Without JavaScript: signing in is a plain form post, and the chart is there all the same.
    {
      const nojs = await browser.newContext({ javaScriptEnabled: false });
      const p = await nojs.newPage();
      await p.goto(P.portal + '/dashboard');
      check(/\/login\?next=/.test(p.url()), `signed-out visitors go to the login page: ${p.url()}`);
      await p.fill('#email', P.owner);
      await p.fill('#password', 'not the password at all');
      await Promise.all([p.waitForURL(/error=/), p.click('button[type=submit]')]);
      check(/Wrong e-mail or password/.test(await p.textContent('.login-error')), 'the no-JS login error is shown');
      await p.fill('#email', P.owner);
      await p.fill('#password', P.password);
      await Promise.all([p.waitForURL(/\/dashboard$/), p.click('button[type=submit]')]);
      const l = await p.locator('.widget[data-connector="wordpress"] svg.chart').getAttribute('aria-label');
      check(/12 posts/.test(l), `no-JS chart: ${l}`);
      await nojs.close();
    }
    ok('dashboard-chart');

    // Edit the agent's backstory and temperature; the change is persisted.
    await open(page, `/dashboard/agents/${P.writer}`);
    const backstory = `Edited in the browser at ${Date.now()}.`;
    await page.fill('#backstory', backstory);
    await page.locator('#temperature').evaluate((el) => {
      el.value = '1.3';
      el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    check((await page.textContent('#temperature-value')).trim() === '1.3', 'the slider shows its value');
    await page.click('button#save-settings');
    await page.waitForSelector('.settings-outcome .note.ok');
    await page.reload();
    await hydrated(page);
    check(await page.inputValue('#backstory') === backstory, 'backstory persisted');
    check(await page.inputValue('#temperature') === '1.3', 'temperature persisted');
    check((await page.textContent('#temperature-value')).trim() === '1.3', 'temperature shown');
    result.backstory = backstory;
    // A value the API refuses is explained next to its field.
    await page.fill('#max_tokens', '0');
    await page.click('button#save-settings');
    await page.waitForSelector('#max_tokens-error:not(:empty)');
    ok('agent-settings');

    // Grant a tool.
    await page.check('#grant-wordpress');
    await page.click('#tools-wordpress summary');
    await page.check('#action-wordpress-create_post');
    await page.click('button#save-tools');
    await page.waitForSelector('.tools-outcome .note.ok');
    ok('tool-grant');

    // Knowledge: a collection for the agent, a PDF uploaded and followed until ready.
    await page.fill('#new-collection', 'Brand book');
    await page.click('button#create-collection');
    await page.waitForSelector('.collection input[type=file]');
    await page.setInputFiles('.collection input[type=file]', P.pdf);
    await Promise.all([page.waitForURL(/document=/), page.click('.collection button.upload')]);
    await hydrated(page);
    await page.waitForSelector('.document-status[data-status="ready"]', { timeout: 120000 });
    ok('knowledge-upload');

    // Chat: the reply streams in, and a citation names the document and page.
    await open(page, `/dashboard/chat/${P.writer}`);
    await page.fill('#message', 'What is our brand voice?');
    await page.click('button#send');
    const seen = new Set();
    const deadline = Date.now() + 30000;
    let text = '';
    while (Date.now() < deadline) {
      text = (await page.locator('.message.assistant .text').last().textContent().catch(() => '')) || '';
      seen.add(text.length);
      if (text.trim() === P.reply) break;
      await page.waitForTimeout(40);
    }
    check(text.trim() === P.reply, `final reply: ${text}`);
    const partial = [...seen].filter((n) => n > 0 && n < P.reply.length);
    check(partial.length >= 3, `expected the reply to arrive incrementally, saw lengths ${[...seen]}`);
    await page.locator('.message.assistant .citation').first().waitFor();
    const cited = await page.locator('.message.assistant .citation').allTextContents();
    check(cited.some((c) => /brand-book/.test(c) && /p\. ?2/.test(c)), `citations: ${cited}`);
    ok('chat-stream');
    // The conversation is listed and reloads from the API.
    await page.reload();
    await hydrated(page);
    await page.click('.conversations ul a >> nth=0');
    await page.waitForSelector('.message.assistant .citation');
    ok('chat-history');
    // A tool call shows as a collapsible card with its result.
    await page.fill('#message', 'Draft a post about spring');
    await page.click('button#send');
    const card = page.locator('.message.tool .tool-card').last();
    await card.waitFor();
    check(/wordpress\.create_post/.test(await card.locator('summary').textContent()), 'the tool card names the call');
    await card.locator('.status-ok').waitFor();
    await card.locator('summary').click();
    check(/Spring/.test(await card.locator('pre').textContent()), 'the card shows the arguments');
    await page.waitForFunction(() => [...document.querySelectorAll('.message.assistant .text')].some((e) => e.textContent.trim() === 'Done.'));
    ok('chat-tool-card');

    // API keys: create (shown once), revoke.
    await open(page, '/dashboard/integrations');
    await page.fill('#key-name', 'Reporting script');
    await page.check('#scope-agents-read');
    await page.click('button#create-key');
    const secret = await page.locator('.key-outcome .secret').textContent();
    check(/^bk_/.test(secret.trim()), `the new key is shown once: ${secret}`);
    const row = page.locator('tr[data-key-name="Reporting script"]');
    await row.waitFor();
    await row.locator('button.revoke').click();
    await page.waitForSelector('tr[data-key-name="Reporting script"] .status-revoked');
    ok('api-key');
    // Automation rules: linked to their connector, disabled with one click.
    const rule = page.locator('tr[data-rule]').first();
    check(await rule.locator('a[href="/dashboard/connectors/hubspot"]').count() === 1, 'the rule links to HubSpot');
    await rule.locator('.status-enabled').waitFor();
    await rule.locator('button', { hasText: 'Disable' }).click();
    await page.waitForSelector('tr[data-rule] .status-disabled');
    ok('rule-toggle');

    // Approve the task waiting for approval.
    await shoot(page, 'tasks', '/dashboard/tasks');
    await open(page, '/dashboard/tasks');
    const task = page.locator(`[data-task="${P.task}"]`);
    await task.locator('.status-awaiting_approval').first().waitFor();
    await task.locator('button.approve').click();
    await page.waitForSelector('.decision-outcome .note.ok');
    const until = Date.now() + 60000;
    for (;;) {
      await open(page, '/dashboard/tasks');
      if (await page.locator(`[data-task="${P.task}"] .task-status .status-succeeded`).count()) break;
      check(Date.now() < until, 'the approved task never succeeded');
      await page.waitForTimeout(500);
    }
    ok('approve-task');

    // Screenshots of every page at both widths.
    await shoot(page, 'dashboard', '/dashboard');
    await shoot(page, 'agents', '/dashboard/agents');
    await shoot(page, 'agent', `/dashboard/agents/${P.writer}`);
    await open(page, `/dashboard/chat/${P.writer}`);
    const first = await page.locator('.conversations ul a').first().getAttribute('href');
    await shoot(page, 'chat', first);
    await shoot(page, 'connectors', '/dashboard/connectors');
    await shoot(page, 'connector', '/dashboard/connectors/wordpress');
    await shoot(page, 'integrations', '/dashboard/integrations');
    await shoot(page, 'audit', '/dashboard/audit');
    await shoot(page, 'health', '/dashboard/health');
    // The audit log filters.
    await open(page, '/dashboard/audit?action=api_key.revoke');
    check(await page.locator('tbody tr').count() === 1, 'one api_key.revoke event');
    // Keyboard: the skip link is the first stop and shows focus.
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.classList.contains('skip')), 'skip link first');
    ok('screenshots');

    // Disconnect: the secret is destroyed and the dashboard offers to connect again.
    await open(page, '/dashboard/connectors/wordpress');
    await page.click('button#disconnect');
    await page.waitForSelector('.connection-status .status-disconnected');
    await open(page, '/dashboard');
    check(await page.locator('.widget-disconnected[data-connector="wordpress"] a[href="/dashboard/connectors/wordpress"]').count() === 1,
      'the WordPress widget now links to connect it');
    ok('disconnect');

    // A viewer sees no edit controls, and a forced save is refused by the gateway.
    const viewerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const viewer = await login(viewerContext, P.viewer);
    current = viewer;
    await open(viewer, `/dashboard/agents/${P.writer}`);
    await viewer.waitForSelector('#backstory');
    for (const selector of ['button#save-settings', 'button#save-tools', 'button#create-collection', '.collection button.upload']) {
      check(await viewer.locator(selector).count() === 0, `viewer sees ${selector}`);
    }
    await open(viewer, '/dashboard/connectors/wordpress');
    check(await viewer.locator('button#connect, button#disconnect, button#test').count() === 0, 'viewer sees connector controls');
    await open(viewer, '/dashboard/integrations');
    check(await viewer.locator('button#create-key, button.revoke').count() === 0, 'viewer sees key controls');
    await open(viewer, '/dashboard/tasks');
    check(await viewer.locator('button.approve, button.reject').count() === 0, 'viewer sees approval controls');
    const forced = await viewer.evaluate(async (writer) => {
      const csrf = document.cookie.split('; ').find((c) => c.startsWith('brain_csrf=')).split('=')[1];
      const body = new URLSearchParams({
        csrf, id: writer, version: '1', name: 'Hijacked', role: 'Hijacked', goal: 'Hijacked',
        backstory: 'Hijacked', temperature: '0.1', model: 'openai:gpt-4o-mini', max_tokens: '100',
      });
      const r = await fetch('/api/agents/save', { method: 'POST', body,
        headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      return { status: r.status, body: await r.text() };
    }, P.writer);
    check(/"ok":false/.test(forced.body) && /Not allowed/.test(forced.body), `forced POST: ${JSON.stringify(forced)}`);
    ok('viewer');

    console.log('RESULT ' + JSON.stringify(result));
  } catch (e) {
    try {
      if (current) {
        await current.screenshot({ path: path.join(P.screenshots, 'failure.png'), fullPage: true });
        fs.writeFileSync(path.join(P.screenshots, 'failure.html'), await current.content());
      }
    } catch (_) { /* the page may be gone */ }
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
