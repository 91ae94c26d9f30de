/** Drives one operation of Swagger UI (at /docs) the way a person does: expand it, Try it out, fill it in, Execute, read the answer off the page. */
import type { Locator, Page } from 'playwright-core'

export interface LiveResponse {
  /** The status code cell of the live response. */
  status: number
  /** The response body as the page shows it (JSON answers pretty-printed). */
  bodyText: string
  /** The response headers as the page lists them, lower-cased names. */
  headers: Record<string, string>
  /** The request URL the page sent. */
  requestUrl: string
}

/** Expands the operation (deep-link id `operations-<tag>-<operationId>`) and presses "Try it out"; either is skipped when already done. */
export async function tryItOut (page: Page, tag: string, operationId: string): Promise<Locator> {
  const op = page.locator(`#operations-${tag}-${operationId}`)
  await op.waitFor({ state: 'visible' })
  if (!(await op.getAttribute('class') ?? '').split(' ').includes('is-open')) await op.locator('.opblock-summary').first().click()
  // In Try it out mode the same slot holds Cancel (and Reset, for a body): wait for either, then decide.
  await op.locator('button.try-out__btn').first().waitFor({ state: 'visible' })
  if (!await op.locator('button.execute').isVisible()) await op.getByRole('button', { name: 'Try it out' }).click()
  await op.locator('button.execute').waitFor({ state: 'visible' })
  return op
}

/** Fills a path, query or header parameter of an operation in Try it out mode. */
export async function fillParameter (op: Locator, name: string, value: string): Promise<void> {
  await op.locator(`tr[data-param-name="${name}"] input`).fill(value)
}

/** Empties every text query parameter: Try it out prefills them with their schema examples (a cursor, filters). */
export async function clearQueryParameters (op: Locator): Promise<void> {
  for (const input of await op.locator('tr[data-param-in="query"] input[type=text]').all()) await input.fill('')
}

/** Presses Execute and waits for the live response; a second Execute on the same operation reads the new answer. */
export async function execute (op: Locator): Promise<LiveResponse> {
  // The previous answer (if any) is removed first, so waiting for the table waits for this request.
  const clear = op.locator('button.btn-clear')
  if (await clear.isVisible()) await clear.click()
  await op.locator('button.execute').click()
  const row = op.locator('.live-responses-table tbody tr.response').first()
  await row.waitFor({ state: 'visible' })
  // An error answer's status cell adds words after the code ("404 Undocumented", "Error: Not Found").
  const statusText = await row.locator('.response-col_status').innerText()
  const status = Number(/\d{3}/.exec(statusText)?.[0])
  const body = row.locator('.response-col_description .highlight-code code')
  const bodyText = await body.count() > 0 ? await body.innerText() : ''
  const headers: Record<string, string> = {}
  for (const line of await row.locator('.headerline').allInnerTexts()) {
    const at = line.indexOf(':')
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim()
  }
  const requestUrl = (await op.locator('.request-url pre').innerText()).trim()
  return { status, bodyText, headers, requestUrl }
}

/** Chooses files for a multipart/form-data property: one file input each, more added with the array's "Add item" button. */
export async function chooseFiles (op: Locator, property: string, files: string[]): Promise<void> {
  const row = op.locator(`tr[data-property-name="${property}"]`)
  for (const [i, file] of files.entries()) {
    if (i > 0) await row.locator('button.json-schema-form-item-add').click()
    await row.locator('input[type=file]').nth(i).setInputFiles(file)
  }
}

/** Replaces the JSON request body (Try it out prefills it with a generated example). */
export async function fillBody (op: Locator, json: unknown): Promise<void> {
  await op.locator('.body-param textarea').fill(JSON.stringify(json))
}
