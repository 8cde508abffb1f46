import { UserError } from '../errors.js';
import { parseWindow } from '../throttler.js';

/** A daily window in a time zone: whether it is open, and how long it stays so. */
export class QueueWindow {
  /** Seconds since midnight. */
  private readonly seconds: { from: number; to: number };
  private readonly clock: Intl.DateTimeFormat;

  constructor(
    readonly text: string,
    readonly tz: string | undefined,
  ) {
    this.seconds = parseWindow(text);
    if (this.seconds.from === this.seconds.to) throw new UserError(`--window ${text} never opens: its start and its end are the same`);
    this.clock = zoneClock(tz);
  }

  /** Seconds since midnight in the window's zone. */
  private at(now: Date): number {
    const parts = Object.fromEntries(this.clock.formatToParts(now).map((p) => [p.type, p.value]));
    return (Number(parts.hour) % 24) * 3600 + Number(parts.minute) * 60 + Number(parts.second) + now.getMilliseconds() / 1000;
  }

  /** Milliseconds the window stays open from `now`; 0 when it is closed. */
  msLeft(now: Date): number {
    const t = this.at(now);
    const { from, to } = this.seconds;
    const open = from <= to ? t >= from && t < to : t >= from || t < to;
    if (!open) return 0;
    const left = to > t ? to - t : to + 24 * 3600 - t;
    return Math.round(left * 1000);
  }

  describe(): string {
    return `${this.text}${this.tz ? ` ${this.tz}` : ''}`;
  }
}

/** A clock reading hours, minutes and seconds in `tz`; an unknown zone is refused in one line. */
export function zoneClock(tz: string | undefined): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  } catch {
    throw new UserError(`--tz ${tz}: not a time zone (an IANA name, e.g. Europe/Berlin)`);
  }
}

/** `HH:MM[:SS]` today or, when that has passed, tomorrow, in the runner's local time: the end of `queue run --until`. */
export function untilTime(text: string, now: Date): Date {
  const m = text.match(/^(\d{1,2}):(\d{2})(?::(\d{2}))?$/);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3] ?? 0) > 59) throw new UserError(`--until ${text} is not HH:MM (local time), e.g. 06:00`);
  const end = new Date(now);
  end.setHours(Number(m[1]), Number(m[2]), Number(m[3] ?? 0), 0);
  if (end <= now) end.setDate(end.getDate() + 1);
  return end;
}
