import type { CaptureChoice, CaptureMode } from '../ports/capture.js';

/**
 * `auto` takes the change stream (binlog, logical decoding) where the server offers it and the role
 * may read it: it costs the application's writes nothing. Triggers otherwise, as pt-online-schema-change
 * and pg_repack do: they need only what a table owner has. `stream` asked for explicitly is kept even
 * when unavailable, so the preflight refuses with the server settings to change.
 */
export function chooseCapture(mode: CaptureMode, streamName: string, streamProblems: string[]): CaptureChoice {
  if (mode === 'trigger') return { kind: 'trigger', why: '--capture trigger' };
  if (mode === 'stream') return { kind: 'stream', why: '--capture stream' };
  if (streamProblems.length === 0) return { kind: 'stream', why: `${streamName} is available` };
  return { kind: 'trigger', why: `${streamName} is unavailable: ${streamProblems.join('; ')}` };
}

export function describeCapture(choice: CaptureChoice): string {
  return `changes: ${choice.kind === 'stream' ? 'the change stream' : 'triggers recording keys into a log table'} (${choice.why})`;
}

export function captureMode(value: string): CaptureMode {
  if (value === 'auto' || value === 'stream' || value === 'trigger') return value;
  throw new Error('must be auto, stream or trigger');
}
