/**
 * Keeps the last `limit` bytes of a stream of chunks, so a program that prints gigabytes costs a
 * bounded amount of memory. Bytes dropped from the front are counted.
 */
export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes seen in all. */
  total = 0;

  constructor(private readonly limit: number) {}

  /** Adds a chunk, dropping the oldest bytes beyond the limit. */
  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit) {
      const first = this.chunks[0];
      if (first === undefined) break;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  /** The kept bytes as text; starts with a note when earlier output was dropped. */
  text(): string {
    const body = Buffer.concat(this.chunks).toString('utf8');
    const dropped = this.total - this.size;
    return dropped > 0 ? `[… ${String(dropped)} earlier bytes dropped]\n${body}` : body;
  }
}
