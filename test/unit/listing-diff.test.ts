import { describe, expect, it } from 'vitest';
import { diffListing, type ListedObject } from '../../src/calendar/policy/listing-diff.js';

type Row = {
  name: string;
  known: [string, string | null][];
  listed: ListedObject[];
  changed: ListedObject[];
  unchanged: ListedObject[];
  deleted: string[];
};

const o = (remoteId: string, etag: string | null): ListedObject => ({ remoteId, etag });

const table: Row[] = [
  {
    name: 'nothing stored, nothing listed',
    known: [],
    listed: [],
    changed: [],
    unchanged: [],
    deleted: [],
  },
  {
    name: 'a new object is changed',
    known: [],
    listed: [o('a', '1')],
    changed: [o('a', '1')],
    unchanged: [],
    deleted: [],
  },
  {
    name: 'the stored etag: unchanged',
    known: [['a', '1']],
    listed: [o('a', '1')],
    changed: [],
    unchanged: [o('a', '1')],
    deleted: [],
  },
  {
    name: 'another etag: changed',
    known: [['a', '1']],
    listed: [o('a', '2')],
    changed: [o('a', '2')],
    unchanged: [],
    deleted: [],
  },
  {
    name: 'stored but not listed: deleted',
    known: [
      ['a', '1'],
      ['b', '2'],
    ],
    listed: [o('a', '1')],
    changed: [],
    unchanged: [o('a', '1')],
    deleted: ['b'],
  },
  {
    name: 'an empty listing deletes everything stored, null etags too',
    known: [
      ['a', '1'],
      ['b', null],
    ],
    listed: [],
    changed: [],
    unchanged: [],
    deleted: ['a', 'b'],
  },
  {
    name: 'no etag listed: changed, even where none was stored',
    known: [
      ['a', null],
      ['b', '1'],
    ],
    listed: [o('a', null), o('b', null), o('c', null)],
    changed: [o('a', null), o('b', null), o('c', null)],
    unchanged: [],
    deleted: [],
  },
  {
    name: 'an etag where none was stored: changed',
    known: [['a', null]],
    listed: [o('a', '1')],
    changed: [o('a', '1')],
    unchanged: [],
    deleted: [],
  },
  {
    name: 'listed twice: once, by the last entry, at the place of the first',
    known: [['a', '2']],
    listed: [o('a', '1'), o('b', '1'), o('a', '2'), o('b', '2'), o('b', '3')],
    changed: [o('b', '3')],
    unchanged: [o('a', '2')],
    deleted: [],
  },
  {
    name: 'listed twice, the last entry changed',
    known: [['a', '1']],
    listed: [o('a', '1'), o('a', '2')],
    changed: [o('a', '2')],
    unchanged: [],
    deleted: [],
  },
  {
    name: 'everything at once, in listing order',
    known: [
      ['same', 'x'],
      ['moved', 'x'],
      ['gone', 'x'],
    ],
    listed: [o('new', 'y'), o('same', 'x'), o('moved', 'y')],
    changed: [o('new', 'y'), o('moved', 'y')],
    unchanged: [o('same', 'x')],
    deleted: ['gone'],
  },
];

describe('diffListing', () => {
  it.each(table)('$name', ({ known, listed, changed, unchanged, deleted }) => {
    expect(diffListing(new Map(known), listed)).toEqual({ changed, unchanged, deleted });
  });

  it('hands back the listed objects themselves, with whatever else they carry', () => {
    const listed = [
      { remoteId: 'a', etag: '1', ics: 'A' },
      { remoteId: 'b', etag: '1', ics: 'B' },
    ];
    const diff = diffListing(new Map([['b', '1']]), listed);
    expect(diff.changed[0]).toBe(listed[0]);
    expect(diff.unchanged[0]).toBe(listed[1]);
  });

  it('reads any iterable once, such as a generator', () => {
    let reads = 0;
    function* listing() {
      reads++;
      yield o('a', '1');
      yield o('b', '2');
    }
    expect(diffListing(new Map([['a', '1']]), listing()).changed).toEqual([o('b', '2')]);
    expect(reads).toBe(1);
  });
});
