import { InvalidArgumentError } from 'commander';
import { captureMode } from '../core/engine/capture/capture-choice.js';
import type { CaptureMode } from '../core/engine/ports/capture.js';

/** `--capture`, shared by migrate and plan. */
export function cliCaptureMode(value: string): CaptureMode {
  try {
    return captureMode(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
