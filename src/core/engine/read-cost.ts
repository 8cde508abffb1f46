/** Time buckets kept at most; past it, neighbours merge and a bucket covers twice the time. */
const MAX_BUCKETS = 64;
const FIRST_WIDTH_MS = 5000;

interface Bucket {
  reads: number;
  ms: number;
}

/**
 * What reading a change log on the server cost over the run's time (trigger capture reads a table):
 * the proof that a poll's cost stays flat while a long verification keeps old entries in the log,
 * instead of growing with them. Bounded whatever the run's length.
 */
export class ReadCost {
  private readonly started = Date.now();
  private width = FIRST_WIDTH_MS;
  private buckets: Bucket[] = [];
  private reads = 0;
  private longest = 0;

  add(ms: number): void {
    let at = Math.floor((Date.now() - this.started) / this.width);
    while (at >= MAX_BUCKETS) {
      this.buckets = Array.from({ length: Math.ceil(this.buckets.length / 2) }, (_, i) => merge(this.buckets[2 * i], this.buckets[2 * i + 1]));
      this.width *= 2;
      at = Math.floor((Date.now() - this.started) / this.width);
    }
    while (this.buckets.length <= at) this.buckets.push({ reads: 0, ms: 0 });
    this.buckets[at].reads++;
    this.buckets[at].ms += ms;
    this.reads++;
    this.longest = Math.max(this.longest, ms);
  }

  /** Average ms per read in each tenth of the time read so far (fewer parts for a short run), the count and the longest; null before any read. */
  summary(): { reads: number; longestMs: number; msPerReadByPart: number[] } | null {
    if (this.reads === 0) return null;
    const parts = Math.min(10, this.buckets.length);
    const size = this.buckets.length / parts;
    const msPerReadByPart = Array.from({ length: parts }, (_, i) => {
      const part = this.buckets.slice(Math.round(i * size), Math.round((i + 1) * size)).reduce(merge, { reads: 0, ms: 0 });
      return part.reads ? Math.round((part.ms / part.reads) * 100) / 100 : 0;
    });
    return { reads: this.reads, longestMs: Math.round(this.longest), msPerReadByPart };
  }
}

function merge(a: Bucket, b: Bucket | undefined): Bucket {
  return b ? { reads: a.reads + b.reads, ms: a.ms + b.ms } : a;
}
