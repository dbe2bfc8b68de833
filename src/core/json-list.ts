import {listedAsRead} from './json-pieces.js'

/**
 * A list in a command's result whose members are made only as they are read: restore's `files`
 * (one per saved entry, 200,000 on a large controller) is made from the install plan as the
 * `--json` envelope is written (json-pieces.ts walks it as an array), instead of being held as
 * 200,000 objects until the write. JSON.stringify sees the same array through toJSON.
 */
export class JsonList<T> implements Iterable<T> {
  readonly [listedAsRead] = true
  constructor(
    readonly length: number,
    private readonly members: () => Iterable<T>,
  ) {}

  [Symbol.iterator](): Iterator<T> {
    return this.members()[Symbol.iterator]()
  }

  filter(test: (member: T) => boolean): T[] {
    const kept: T[] = []
    for (const member of this) if (test(member)) kept.push(member)
    return kept
  }

  toJSON(): T[] {
    return [...this]
  }
}
