import type { Position } from '../../../core/engine/types.js';

/** LSNs `X/Y` compared as 64-bit numbers; string comparison gets `9/0` vs `10/0` wrong. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

export function formatLsn(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function comparePositions(a: Position, b: Position): number {
  const x = lsnValue(String(a.lsn));
  const y = lsnValue(String(b.lsn));
  return x < y ? -1 : x > y ? 1 : 0;
}
