// How values cross between a Code Mode guest and the host: JSON, with binary data
// (ArrayBuffer, typed arrays, DataView, Node Buffers) carried as tagged base64 objects
// `{ "__secure_exec_binary__": "<kind>", "base64": "..." }`. The guest side is the same
// algorithm in plain JavaScript (GUEST_VALUE_CODEC), so both directions agree.

/** Key of a tagged binary value; an object with this key and a string `base64` decodes to bytes. */
export const BINARY_TAG = "__secure_exec_binary__";

const TYPED_ARRAYS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

function kindOf(value: ArrayBufferView): string {
  if (value instanceof DataView) return "DataView";
  // A Node Buffer is a Uint8Array to the other side.
  if (value instanceof Uint8Array) return "Uint8Array";
  const name = value.constructor?.name;
  return name && name in TYPED_ARRAYS ? name : "Uint8Array";
}

function bytesOf(value: ArrayBuffer | ArrayBufferView): Buffer {
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Buffer.from(value);
}

/**
 * Whether `value` is plain data (plain objects and arrays, no BigInt, binary or `toJSON`),
 * which the replacer below would leave as it is. A replacer costs ~10 times a plain
 * stringify (a call per value: ~0.25 s per MiB of `[0,0,…]` on the host's event loop), and
 * a tool's result may be the guest's own arguments. Anything else, a shared or cyclic
 * object included, takes the replacer. (A getter of plain data is read by both passes.)
 */
function isPlainData(value: unknown): boolean {
  if (typeof value === "bigint") return false;
  if (typeof value !== "object" || value === null) return true;
  const seen = new Set<object>();
  const pending: object[] = [value];
  // Primitives are judged where they are met; only objects wait in `pending`.
  const visit = (child: unknown): boolean => {
    if (typeof child === "bigint") return false;
    if (typeof child === "object" && child !== null) pending.push(child);
    return true;
  };
  while (pending.length > 0) {
    const item = pending.pop()!;
    if (seen.has(item)) return false;
    seen.add(item);
    const prototype: unknown = Object.getPrototypeOf(item);
    if (typeof (item as { toJSON?: unknown }).toJSON === "function") return false;
    if (Array.isArray(item)) {
      if (prototype !== Array.prototype) return false;
      for (let index = 0; index < item.length; index++) if (!visit(item[index])) return false;
    } else {
      if (prototype !== Object.prototype && prototype !== null) return false;
      for (const key of Object.keys(item)) if (!visit((item as Record<string, unknown>)[key])) return false;
    }
  }
  return true;
}

/** JSON text of `value` with binary values tagged; `undefined` when JSON has no text for it. */
export function encodeValue(value: unknown): string | undefined {
  if (isPlainData(value)) return JSON.stringify(value);
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, replaced: unknown) {
    // `this[key]` is the value before `toJSON` (a Buffer's toJSON would hide its bytes).
    const original = this[key];
    if (original instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && original instanceof SharedArrayBuffer)) {
      return { [BINARY_TAG]: "ArrayBuffer", base64: bytesOf(original as ArrayBuffer).toString("base64") };
    }
    if (ArrayBuffer.isView(original)) return { [BINARY_TAG]: kindOf(original), base64: bytesOf(original).toString("base64") };
    if (typeof replaced === "bigint") throw new TypeError("a BigInt value cannot cross to the sandbox (not JSON)");
    return replaced;
  });
}

function decodeTagged(kind: string, base64: string): unknown {
  const bytes = Buffer.from(base64, "base64");
  // A fresh, exactly sized ArrayBuffer (Buffer.from may share a pooled one).
  const buffer = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buffer).set(bytes);
  if (kind === "ArrayBuffer") return buffer;
  if (kind === "DataView") return new DataView(buffer);
  const View = Object.hasOwn(TYPED_ARRAYS, kind) ? TYPED_ARRAYS[kind as TypedArrayName] : Uint8Array;
  if (buffer.byteLength % View.BYTES_PER_ELEMENT !== 0) return new Uint8Array(buffer);
  return new View(buffer);
}

type Tagged = { [BINARY_TAG]: string; base64: string };

function isTagged(value: unknown): value is Tagged {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const tagged = value as Record<string, unknown>;
  return typeof tagged[BINARY_TAG] === "string" && typeof tagged.base64 === "string";
}

/**
 * Parses JSON text from the other side, turning tagged binary values back into bytes. A
 * reviver costs ~20 times a plain parse (a call per value: ~0.4 s per MiB of `[0,0,…]`
 * on the host's event loop), so the text is parsed plainly and walked only when the tag
 * occurs in it. The walk is iterative (guest JSON nests deep) and stops at a tagged value,
 * which a reviver would replace whole.
 */
export function decodeValue(text: string): unknown {
  const parsed: unknown = JSON.parse(text);
  if (!text.includes(BINARY_TAG)) return parsed;
  if (isTagged(parsed)) return decodeTagged(parsed[BINARY_TAG], parsed.base64);
  const pending: object[] = typeof parsed === "object" && parsed !== null ? [parsed] : [];
  while (pending.length > 0) {
    const container = pending.pop() as Record<string, unknown>;
    for (const key of Object.keys(container)) {
      const child = container[key];
      if (typeof child !== "object" || child === null) continue;
      if (isTagged(child)) {
        // Defined, not assigned: a `__proto__` key from JSON is an own property, not the prototype.
        Object.defineProperty(container, key, { value: decodeTagged(child[BINARY_TAG], child.base64), writable: true, enumerable: true, configurable: true });
      } else {
        pending.push(child);
      }
    }
  }
  return parsed;
}

/** The same codec inside the guest (plain JavaScript; workerd has atob/btoa). */
export const GUEST_VALUE_CODEC = String.raw`
  const BINARY_TAG = ${JSON.stringify(BINARY_TAG)};
  const TYPED_ARRAYS = { Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array };
  const toBase64 = (bytes) => {
    let binary = "";
    for (let i = 0; i < bytes.byteLength; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  };
  const fromBase64 = (text) => {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  };
  const viewKind = (view) => {
    if (view instanceof DataView) return "DataView";
    if (view instanceof Uint8Array) return "Uint8Array";
    const name = view.constructor && view.constructor.name;
    return name && Object.prototype.hasOwnProperty.call(TYPED_ARRAYS, name) ? name : "Uint8Array";
  };
  const encodeValue = (value) => JSON.stringify(value, function (key, replaced) {
    const original = this[key];
    if (original instanceof ArrayBuffer) return { [BINARY_TAG]: "ArrayBuffer", base64: toBase64(new Uint8Array(original)) };
    if (ArrayBuffer.isView(original)) {
      return { [BINARY_TAG]: viewKind(original), base64: toBase64(new Uint8Array(original.buffer, original.byteOffset, original.byteLength)) };
    }
    if (typeof replaced === "bigint") throw new TypeError("a BigInt value cannot cross to the host (not JSON)");
    return replaced;
  });
  const isTagged = (value) => value !== null && typeof value === "object" && !Array.isArray(value) && typeof value[BINARY_TAG] === "string" && typeof value.base64 === "string";
  const decodeTagged = (value) => {
    const bytes = fromBase64(value.base64);
    const kind = value[BINARY_TAG];
    if (kind === "ArrayBuffer") return bytes.buffer;
    if (kind === "DataView") return new DataView(bytes.buffer);
    const View = Object.prototype.hasOwnProperty.call(TYPED_ARRAYS, kind) ? TYPED_ARRAYS[kind] : Uint8Array;
    return bytes.byteLength % View.BYTES_PER_ELEMENT === 0 ? new View(bytes.buffer) : bytes;
  };
  const decodeValue = (text) => {
    const parsed = JSON.parse(text);
    if (!text.includes(BINARY_TAG)) return parsed;
    if (isTagged(parsed)) return decodeTagged(parsed);
    const pending = parsed !== null && typeof parsed === "object" ? [parsed] : [];
    while (pending.length > 0) {
      const container = pending.pop();
      for (const key of Object.keys(container)) {
        const child = container[key];
        if (child === null || typeof child !== "object") continue;
        if (isTagged(child)) Object.defineProperty(container, key, { value: decodeTagged(child), writable: true, enumerable: true, configurable: true });
        else pending.push(child);
      }
    }
    return parsed;
  };
`;
