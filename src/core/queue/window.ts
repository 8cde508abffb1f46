import { UserError } from '../engine/errors.js';
import { inRange, parseWindow, type DailyWindow } from '../run/throttler.js';

/** A daily window in a time zone: whether it is open, and how long it stays so. */
export class QueueWindow {
  private readonly ranges: DailyWindow;
  private readonly clock: Intl.DateTimeFormat;

  constructor(
    readonly text: string,
    readonly tz: string | undefined,
  ) {
    this.ranges = parseWindow(text);
    if (this.ranges.some((r) => r.from === r.to)) throw new UserError(`--window ${text} never opens: its start and its end are the same`);
    this.clock = zoneClock(tz);
  }

  /** Seconds since midnight in the window's zone. */
  private at(now: Date): number {
    const parts = Object.fromEntries(this.clock.formatToParts(now).map((p) => [p.type, p.value]));
    return (Number(parts.hour) % 24) * 3600 + Number(parts.minute) * 60 + Number(parts.second) + now.getMilliseconds() / 1000;
  }

  /** Milliseconds the window stays open from `now` (to the end of the range it is in); 0 when it is closed. */
  msLeft(now: Date): number {
    const t = this.at(now);
    const left = this.ranges.filter((r) => inRange(r, t)).map(({ to }) => (to > t ? to - t : to + 24 * 3600 - t));
    return left.length === 0 ? 0 : Math.round(Math.max(...left) * 1000);
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
