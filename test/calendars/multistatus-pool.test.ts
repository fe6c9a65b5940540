import { afterAll, describe, expect, it } from 'vitest';
import { createParserPool, inlineParser } from '../../src/calendar/parsing/parser.js';

/*
 * CalDAV multistatus answers read on the parser's worker threads: the same responses as on the
 * calling thread, and an answer that does not parse is a value the provider turns into its error.
 */

const BASE = 'http://127.0.0.1:5232/alice/work/';

const ICS = [
  'BEGIN:VCALENDAR',
  'VERSION:2.0',
  'BEGIN:VEVENT',
  'UID:one@example.com',
  'DTSTART:20261202T090000Z',
  'SUMMARY:Tom &amp; Jerry',
  'END:VEVENT',
  'END:VCALENDAR',
].join('&#13;\n');

const MULTIGET = `<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:response>
    <d:href>/alice/work/one%20event.ics</d:href>
    <d:propstat><d:prop><d:getetag>"e1"</d:getetag><c:calendar-data>${ICS}</c:calendar-data></d:prop>
      <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
  </d:response>
  <d:response>
    <d:href>two.ics</d:href>
    <d:propstat><d:prop><d:getetag>bare-tag</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
  </d:response>
  <d:response><d:href>/alice/work/gone.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>
  <d:sync-token>http://example.com/sync/7</d:sync-token>
</d:multistatus>`;

describe('multistatus answers on the parser pool', () => {
  const pool = createParserPool({ threads: 1 });
  afterAll(() => pool.close());

  it('reads hrefs, statuses, etags and calendar data as the calling thread does', async () => {
    const [pooled, local] = [
      await pool.readMultiStatus(MULTIGET, BASE),
      await inlineParser().readMultiStatus(MULTIGET, BASE),
    ];
    expect(pooled).toEqual(local);
    expect(pooled).toEqual({
      ok: true,
      syncToken: 'http://example.com/sync/7',
      entries: [
        {
          path: '/alice/work/one event.ics',
          url: 'http://127.0.0.1:5232/alice/work/one%20event.ics',
          status: null,
          etag: '"e1"',
          calendarData: ICS.replace(/&#13;/g, '\r').replace(/&amp;/g, '&'),
        },
        {
          path: '/alice/work/two.ics',
          url: 'http://127.0.0.1:5232/alice/work/two.ics',
          status: null,
          etag: '"bare-tag"',
          calendarData: null,
        },
        {
          path: '/alice/work/gone.ics',
          url: 'http://127.0.0.1:5232/alice/work/gone.ics',
          status: 404,
          etag: null,
          calendarData: null,
        },
      ],
    });
  });

  it('answers malformed XML and other documents with the reason, not a thrown error', async () => {
    const broken = await pool.readMultiStatus('<d:multistatus xmlns:d="DAV:"><d:response>', BASE);
    expect(broken.ok).toBe(false);
    if (!broken.ok) expect(broken.error).toMatch(/does not parse/);
    const other = await pool.readMultiStatus('<d:error xmlns:d="DAV:"><d:forbidden/></d:error>', BASE);
    expect(other).toEqual({ ok: false, error: 'expected a DAV multistatus, got <error>' });
  });
});
