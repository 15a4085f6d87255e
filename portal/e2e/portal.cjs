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
    // And the first tool of the tenant's MCP server, in the same save.
    await page.check('#mcp-notes-0');
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
    // Back on the agent's page later, the collection lists the document as ready.
    await open(page, `/dashboard/agents/${P.writer}`);
    const listed = await page.textContent('.collection table.documents tr.document[data-status="ready"]');
    check(listed.includes('brand-book.pdf'), `the collection lists the document: ${listed}`);
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
    // The turn commits (and the conversation is listed) before `done` re-enables Send;
    // citations arrive before the commit, so reloading on them alone races it.
    await page.waitForSelector('button#send:not([disabled])');
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

    // The tenant's MCP server is listed under Integrations with its tools.
    await open(page, '/dashboard/integrations');
    const source = page.locator('tr[data-source="notes"]');
    await source.waitFor();
    check(/notes, big, slow/.test(await source.textContent()), 'the MCP server row lists its tools');
    ok('mcp-servers');
    // API keys: create (shown once), revoke.
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
    // Model providers: a wrong key is refused by the provider and kept nowhere; the right one
    // is checked, shown only as a hint, and its models join the agent's model picker.
    const anthropic = page.locator('tr[data-provider="anthropic"]');
    await anthropic.locator('.status-deployment, .status-missing').waitFor();
    check(await page.locator('select#model-provider option[value="local"]').count() === 0, 'the local model takes no key');
    await page.selectOption('#model-provider', 'anthropic');
    await page.fill('#model-api-key', 'sk-ant-wrong-wrong-wrong-wrong');
    await page.click('button#save-model-key');
    await page.locator('.error', { hasText: 'anthropic' }).first().waitFor();
    await page.selectOption('#model-provider', 'anthropic');
    await page.fill('#model-api-key', P.anthropic_key);
    await page.click('button#save-model-key');
    await page.waitForSelector('tr[data-provider="anthropic"] .status-tenant');
    const hint = (await anthropic.locator('td').nth(2).textContent()).trim();
    check(hint.startsWith('sk-') && hint.includes('…') && !P.anthropic_key.includes(hint.replace('…', '')), `a masked hint: ${hint}`);
    check(!(await page.content()).includes(P.anthropic_key), 'the key is not on the page');
    await open(page, `/dashboard/agents/${P.writer}`);
    check(await page.locator('select#model option[value="anthropic:claude-sonnet-4-5"]').count() === 1, 'Claude is in the model picker');
    check(await page.locator('select#model option[value^="gemini:"]').count() === 0, 'a provider without a key offers no models');
    ok('model-providers');

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

    // Delegation: the writer may ask the closer, up to three times a run.
    await open(page, `/dashboard/agents/${P.writer}`);
    await page.check(`#delegate-${P.closer}`);
    await page.fill(`#delegate-max-${P.closer}`, '3');
    await page.click('button#save-delegates');
    await page.waitForSelector('.delegates-outcome .note.ok');
    ok('delegation');

    // Crews: one of two agents made with the form; a task row the API refuses is explained
    // next to its field, and "Add a task" adds rows in place.
    await open(page, '/dashboard/crews');
    await page.fill('#new-crew-name', 'Launch crew');
    await page.check(`#new-crew-member-${P.writer}`);
    await page.check(`#new-crew-member-${P.closer}`);
    await page.selectOption('#new-crew-process', 'sequential');
    await page.fill('#task-0-description', 'Outline the launch');
    await page.fill('#task-0-expected_output', 'Three beats');
    await page.click('#new-crew-add-task');
    await page.fill('#task-1-description', 'Write the announcement');
    await page.click('button#create-crew');
    await page.waitForSelector('#tasks-1-expected_output-error:not(:empty)');
    check(/must not be blank/.test(await page.textContent('#tasks-1-expected_output-error')), 'the row error names the problem');
    await page.fill('#task-1-expected_output', 'One paragraph');
    await page.selectOption('#task-1-agent', P.closer);
    await Promise.all([page.waitForURL(/\/dashboard\/crews\/[0-9a-f-]{36}$/), page.click('button#create-crew')]);
    await page.waitForSelector('#run-input');
    const crewUrl = new URL(page.url()).pathname;
    result.crew = crewUrl.split('/').pop();
    check(await page.locator('.crew-task[data-saved="true"]').count() === 2, 'the crew has two tasks');
    check(await page.locator('.crew-task[data-saved="false"]').count() === 1, 'and a blank row for a third');
    ok('crew-create');

    // Run it: the run's page opens and follows the members' turns live, without a reload.
    // A browser without JavaScript, signed in beforehand, watches the same run.
    const nojs = await browser.newContext({ javaScriptEnabled: false });
    const np = await nojs.newPage();
    await np.goto(P.portal + '/login');
    await np.fill('#email', P.owner);
    await np.fill('#password', P.password);
    await Promise.all([np.waitForURL(/\/dashboard$/), np.click('button[type=submit]')]);
    await page.fill('#run-input', 'Launch the spring sale');
    await Promise.all([page.waitForURL(/\/dashboard\/tasks\/[0-9a-f-]{36}$/), page.click('button#run-crew')]);
    await page.waitForSelector('.run-status');
    // Every state the page goes through, recorded in the page itself.
    await page.evaluate(() => {
      window.notReloaded = true;
      window.seen = [];
      const record = () => {
        const status = document.querySelector('.run-status')?.dataset.status;
        const turns = [...document.querySelectorAll('.crew-step')].map((l) => l.dataset.status).join(',');
        const state = `${status}|${turns}`;
        if (window.seen[window.seen.length - 1] !== state) window.seen.push(state);
      };
      record();
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    const runPath = new URL(page.url()).pathname;
    result.run = runPath.split('/').pop();
    // Without JavaScript the running run's page reloads itself until the run ends.
    await np.goto(P.portal + runPath);
    check(await np.getAttribute('.run-status', 'data-status') !== 'succeeded', 'the run was still going');
    check(await np.locator('meta[http-equiv="refresh"]').count() === 1, 'a running run reloads itself without JavaScript');
    // A fresh tab opened on the running run hydrates and follows it too.
    const tab = await context.newPage();
    await open(tab, runPath);
    const ended = (p) => p.waitForFunction(() => ['succeeded', 'failed', 'cancelled']
      .includes(document.querySelector('.run-status')?.dataset.status), null, { timeout: 120000 });
    await ended(page);
    const runStates = await page.evaluate(() => window.seen);
    check(await page.getAttribute('.run-status', 'data-status') === 'succeeded', `the run ended: ${runStates}; ${await page.textContent('main')}`);
    check(await page.evaluate(() => window.notReloaded === true), 'the run page updated in place');
    check(runStates.some((s) => /\|succeeded,running$/.test(s)), `the second turn was seen running after the first: ${runStates}`);
    await page.waitForSelector('#run-output');
    const outputs = await page.locator('.crew-step .step-output').allTextContents();
    check(outputs.length === 2 && outputs[0].trim() === 'Outline the launch: done.'
      && outputs[1].trim() === 'Write the announcement: done, building on the earlier result.', `member outputs: ${outputs}`);
    check(/Write the announcement: done/.test(await page.textContent('#run-output')), 'the crew run answers with the last turn');
    await ended(tab);
    await tab.waitForSelector('#run-output');
    check(await tab.locator('.crew-step .step-output').count() === 2, 'the second tab followed the run');
    await tab.close();
    await np.waitForSelector('.run-status[data-status="succeeded"]', { timeout: 60000 });
    check(await np.locator('.crew-step .step-output').count() === 2, 'the no-JS page shows both turns');
    check(await np.locator('meta[http-equiv="refresh"]').count() === 0, 'a finished run stops reloading');
    const members = await page.locator('.crew-step a.member-task').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    check(members.length === 2, `links to the members' tasks: ${members}`);
    await shoot(page, 'run', runPath);
    await open(page, members[1]);
    check(/Task of Closer/.test(await page.textContent('h1')), 'the member task names its agent');
    check(await page.locator(`a.parent-run[href="${runPath}"]`).count() === 1, 'the member task links to its run');
    await open(page, crewUrl);
    await page.locator(`.runs li[data-run="${result.run}"] .status-succeeded`).waitFor();
    ok('crew-run');

    // Delete a crew: back to the list, without it.
    await open(page, `/dashboard/crews/${P.old_crew}`);
    await page.check('#confirm-delete');
    await Promise.all([page.waitForURL(/\/dashboard\/crews$/), page.click('button#delete-crew')]);
    await page.waitForSelector('.crew-card');
    check(await page.locator(`.crew-card[data-crew="${P.old_crew}"]`).count() === 0, 'the deleted crew is gone');
    check(await page.locator(`.crew-card[data-crew="${result.crew}"]`).count() === 1, 'the new crew is listed');
    ok('crew-delete');

    // Without JavaScript: add a task through the blank row, remove it again with its box,
    // and see an error next to its field.
    {
      const p = np;
      current = p;
      await p.goto(P.portal + crewUrl);
      check(await p.locator('#crew-add-task').isHidden(), '"Add a task" needs JavaScript and hides without it');
      await p.fill('#task-2-description', 'Post it on social media');
      await Promise.all([p.waitForURL(/error=/), p.click('button#save-crew')]);
      check(/must not be blank/.test(await p.textContent('#tasks-2-expected_output-error')), 'the no-JS error is next to its field');
      await p.fill('#task-2-description', 'Post it on social media');
      await p.fill('#task-2-expected_output', 'Three posts');
      await Promise.all([p.waitForNavigation(), p.click('button#save-crew')]);
      check(!/error=/.test(p.url()), `a saved form drops the old error: ${p.url()}`);
      check(await p.locator('.crew-task[data-saved="true"]').count() === 3, 'a task added without JavaScript');
      await p.check('#task-2-remove');
      await Promise.all([p.waitForNavigation(), p.click('button#save-crew')]);
      check(await p.locator('.crew-task[data-saved="true"]').count() === 2, 'a task removed without JavaScript');
      await nojs.close();
      current = page;
    }
    ok('crew-nojs');

    // Screenshots of every page at both widths.
    await shoot(page, 'dashboard', '/dashboard');
    await shoot(page, 'agents', '/dashboard/agents');
    await shoot(page, 'agent', `/dashboard/agents/${P.writer}`);
    await shoot(page, 'crews', '/dashboard/crews');
    await shoot(page, 'crew', crewUrl);
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
    await open(viewer, `/dashboard/agents/${P.writer}`);
    check(await viewer.locator('button#save-delegates').count() === 0, 'viewer sees delegation controls');
    check(await viewer.locator(`#delegate-${P.closer}:checked:disabled`).count() === 1, 'viewer sees the delegate, read only');
    await open(viewer, '/dashboard/crews');
    check(await viewer.locator('button#create-crew').count() === 0, 'viewer sees the crew form');
    await open(viewer, crewUrl);
    check(await viewer.locator('button#save-crew, button#run-crew, button#delete-crew, #crew-add-task').count() === 0,
      'viewer sees crew controls');
    check(await viewer.locator('.crew-task[data-saved="true"] textarea:disabled').count() === 2, 'viewer reads the tasks');
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
