// The API reference, run by `gateway/tests/it/openapi.rs` against a real `brain serve gateway`.
// Parameters come as JSON in DOCS_E2E. It validates `/openapi.json` against the OpenAPI
// specification (swagger-parser), then opens `/docs` in headless Chromium with every request
// outside the gateway refused, and prints `RENDERED <n>`: the operations Swagger UI shows.
'use strict';

const path = require('path');

const P = JSON.parse(process.env.DOCS_E2E);
const { chromium } = require(path.join(P.modules, 'playwright-core'));
const SwaggerParser = require(path.join(P.modules, '@apidevtools/swagger-parser'));

async function main() {
  const response = await fetch(`${P.gateway}/openapi.json`);
  if (!response.ok) throw new Error(`/openapi.json answered ${response.status}`);
  const doc = await response.json();
  // `validate` dereferences in place; hand it a copy.
  await SwaggerParser.validate(structuredClone(doc));
  console.log('ok valid');

  const browser = await chromium.launch({ executablePath: P.chromium, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const refused = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(P.gateway)) return route.continue();
      refused.push(url);
      return route.abort();
    });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // A Content-Security-Policy violation is a console error.
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${P.gateway}/docs`);
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 30000 }).catch((e) => {
      throw new Error(`${e.message}\npage errors: ${errors.join('; ')}`);
    });
    const title = await page.textContent('.swagger-ui .info .title');
    if (!/Brain API/.test(title)) throw new Error(`title: ${title}`);
    await page.waitForSelector('.opblock', { timeout: 30000 });
    const rendered = await page.locator('.opblock').count();
    if (refused.length) throw new Error(`the page reached outside Brain: ${refused.join(', ')}`);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    console.log('ok rendered');
    console.log(`RENDERED ${rendered}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
