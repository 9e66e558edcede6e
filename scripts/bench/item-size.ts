import type { WireItem, WireValue } from '../../lambdas/core/rules/attribute-values';

/**
 * An item's size as DynamoDB bills it: attribute names plus values (strings and binaries by
 * their bytes, numbers about one byte per two significant digits plus one, lists and maps 3
 * bytes plus one per element plus the elements). The same rules dynalite applies to its
 * ConsumedCapacity answers.
 */
export function dynamoItemSize(item: WireItem): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function valueSize(value: WireValue): number {
  if (typeof value.S === 'string') return Buffer.byteLength(value.S);
  if (typeof value.N === 'string') return numberSize(value.N);
  if (value.B !== undefined) return binarySize(value.B);
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS) return value.SS.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
  if (value.NS) return value.NS.reduce((sum, text) => sum + numberSize(text), 0);
  if (value.BS) return value.BS.reduce<number>((sum, bytes) => sum + binarySize(bytes), 0);
  if (value.L) return 3 + value.L.reduce((sum, entry) => sum + 1 + valueSize(entry), 0);
  if (value.M) return 3 + Object.keys(value.M).length + dynamoItemSize(value.M);
  return 0;
}

function numberSize(text: string): number {
  const digits = text.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

function binarySize(bytes: unknown): number {
  if (bytes instanceof Uint8Array) return bytes.length;
  return typeof bytes === 'string' ? Buffer.from(bytes, 'base64').length : 0;
}
