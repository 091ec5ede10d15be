// Pixel arithmetic of the page, without the DOM: the same resizing and
// argmax as tf_enet.inference.Predictor.predict, class shares, and a PNG
// encoder for label maps (a canvas can only save RGBA PNGs).

const f32 = Math.fround;

// The spans and weights of tf.image.resize along one axis, as TensorFlow's
// ScaleAndTranslate kernel computes them (triangle kernel, half-pixel
// centres, antialiased: widened by the scale when shrinking), in float32.
function resizeSpans(inSize, outSize) {
  const scale = f32(outSize / inSize);
  const invScale = f32(1 / scale);
  const kernelScale = Math.max(invScale, 1);
  const radius = kernelScale;  // The triangle kernel's radius, 1, scaled.
  const spanSize = Math.min(2 * Math.ceil(radius) + 1, inSize);
  const starts = new Int32Array(outSize);
  const weights = new Float32Array(outSize * spanSize);
  for (let x = 0; x < outSize; x++) {
    const sample = f32(f32(x + 0.5) * invScale);
    if (sample < 0 || sample > inSize) continue;  // Outside: no weights.
    let start = Math.ceil(f32(f32(sample - radius) - 0.5));
    let end = Math.floor(f32(f32(sample + radius) - 0.5));
    start = Math.min(Math.max(start, 0), inSize - 1);
    end = Math.min(Math.max(end, 0), inSize - 1) + 1;
    let total = 0;
    for (let s = start; s < end; s++) {
      const pos = Math.abs(f32(f32(f32(s + 0.5) - sample) * f32(1 / kernelScale)));
      const w = pos < 1 ? f32(1 - pos) : 0;
      weights[x * spanSize + s - start] = w;
      total = f32(total + w);
    }
    if (Math.abs(total) >= 1000 * 1.1754943508222875e-38) {
      const inv = f32(1 / total);
      for (let s = start; s < end; s++) {
        const i = x * spanSize + s - start;
        weights[i] = f32(weights[i] * inv);
      }
    }
    starts[x] = start;
  }
  return { starts, weights, spanSize };
}

// RGBA bytes [height, width, 4] to the model's input: float32 RGB
// [outHeight, outWidth, 3] in [0, 255], resized as tf.image.resize(...,
// "bilinear", antialias=True) does (rows first, then columns), or copied
// when the size is already right.
export function resizeImage(rgba, height, width, outHeight, outWidth) {
  const out = new Float32Array(outHeight * outWidth * 3);
  if (height === outHeight && width === outWidth) {
    for (let i = 0, j = 0; i < out.length; i += 3, j += 4) {
      out[i] = rgba[j];
      out[i + 1] = rgba[j + 1];
      out[i + 2] = rgba[j + 2];
    }
    return out;
  }
  const cols = resizeSpans(width, outWidth);
  const rows = resizeSpans(height, outHeight);
  // Along each row first: [height, outWidth, 3].
  const mid = new Float32Array(height * outWidth * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outWidth; x++) {
      let r = 0, g = 0, b = 0;
      const start = cols.starts[x];
      const base = x * cols.spanSize;
      for (let k = 0; k < cols.spanSize && start + k < width; k++) {
        const w = cols.weights[base + k];
        if (w === 0) continue;
        const j = (y * width + start + k) * 4;
        r += w * rgba[j];
        g += w * rgba[j + 1];
        b += w * rgba[j + 2];
      }
      const i = (y * outWidth + x) * 3;
      mid[i] = r;
      mid[i + 1] = g;
      mid[i + 2] = b;
    }
  }
  const rowLength = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const start = rows.starts[y];
    const base = y * rows.spanSize;
    const o = y * rowLength;
    for (let k = 0; k < rows.spanSize && start + k < height; k++) {
      const w = rows.weights[base + k];
      if (w === 0) continue;
      const m = (start + k) * rowLength;
      for (let i = 0; i < rowLength; i++) out[o + i] += w * mid[m + i];
    }
  }
  return out;
}

// Python's round(): halves to the even neighbour.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// The size an image of [height, width] takes inside the model input
// [inHeight, inWidth] with its aspect ratio kept, as
// tf_enet.inference.processing.fit_size computes it: the whole input when
// the ratios agree to within a pixel.
export function fitSize(height, width, inHeight, inWidth) {
  const scale = Math.min(inHeight / height, inWidth / width);
  let content = [
    Math.min(inHeight, Math.max(1, roundHalfEven(height * scale))),
    Math.min(inWidth, Math.max(1, roundHalfEven(width * scale))),
  ];
  if (Math.abs(content[0] - inHeight) <= 1 && Math.abs(content[1] - inWidth) <= 1) {
    content = [inHeight, inWidth];
  }
  return content;
}

// An image [height, width, 3] placed at the top-left of a [inHeight,
// inWidth, 3] input filled with `padValue`, as processing.letterbox does.
export function padImage(image, height, width, inHeight, inWidth, padValue) {
  if (height === inHeight && width === inWidth) return image;
  const out = new Float32Array(inHeight * inWidth * 3).fill(padValue);
  for (let y = 0; y < height; y++) {
    out.set(image.subarray(y * width * 3, (y + 1) * width * 3), y * inWidth * 3);
  }
  return out;
}

// The top-left [height, width] of logits [inHeight, inWidth, numClasses].
export function cropLogits(logits, inWidth, numClasses, height, width) {
  if (width === inWidth && logits.length === height * width * numClasses) return logits;
  const row = width * numClasses;
  const out = new Float32Array(height * row);
  for (let y = 0; y < height; y++) {
    const start = y * inWidth * numClasses;
    out.set(logits.subarray(start, start + row), y * row);
  }
  return out;
}

// Source indices and weights of TensorFlow's ResizeBilinear with half-pixel
// centres along one axis, in float32 as its kernel computes them.
function bilinearAxis(inSize, outSize) {
  const scale = f32(inSize / outSize);
  const lower = new Int32Array(outSize);
  const upper = new Int32Array(outSize);
  const lerp = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const at = f32(f32(f32(i + 0.5) * scale) - 0.5);
    const floor = Math.floor(at);
    lower[i] = Math.max(floor, 0);
    upper[i] = Math.min(Math.ceil(at), inSize - 1);
    lerp[i] = f32(at - floor);
  }
  return { lower, upper, lerp };
}

// Class ids of logits [height, width, numClasses] resized (bilinear,
// half-pixel centres, as tf.image.resize) to [outHeight, outWidth]: the
// argmax per pixel, the first class on ties, as tf.argmax. Returns a
// Uint8Array, or a Uint16Array beyond 256 classes.
export function resizeArgmax(logits, height, width, numClasses, outHeight, outWidth) {
  const labels = numClasses > 256
    ? new Uint16Array(outHeight * outWidth)
    : new Uint8Array(outHeight * outWidth);
  const xs = bilinearAxis(width, outWidth);
  const ys = bilinearAxis(height, outHeight);
  const rowLength = outWidth * numClasses;
  // Each source row resized along x once, kept while output rows need it.
  const cache = new Map();
  const resizedRow = (y) => {
    let row = cache.get(y);
    if (row) return row;
    row = new Float32Array(rowLength);
    const src = y * width * numClasses;
    for (let x = 0; x < outWidth; x++) {
      const l = src + xs.lower[x] * numClasses;
      const u = src + xs.upper[x] * numClasses;
      const t = xs.lerp[x];
      const o = x * numClasses;
      for (let c = 0; c < numClasses; c++) {
        const a = logits[l + c];
        row[o + c] = a + (logits[u + c] - a) * t;
      }
    }
    for (const key of cache.keys()) if (key < y - 1) cache.delete(key);
    cache.set(y, row);
    return row;
  };
  for (let y = 0; y < outHeight; y++) {
    const top = resizedRow(ys.lower[y]);
    const bottom = resizedRow(ys.upper[y]);
    const t = ys.lerp[y];
    const o = y * outWidth;
    for (let x = 0; x < outWidth; x++) {
      const p = x * numClasses;
      let best = 0;
      let bestValue = -Infinity;
      for (let c = 0; c < numClasses; c++) {
        const a = top[p + c];
        const v = f32(a + f32(bottom[p + c] - a) * t);
        if (v > bestValue) {
          bestValue = v;
          best = c;
        }
      }
      labels[o + x] = best;
    }
  }
  return labels;
}

// The share of the pixels each class covers: numClasses floats summing to 1.
export function classShares(labels, numClasses) {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return Array.from(counts, (n) => n / labels.length);
}

// RGBA bytes [height, width, 4] of `colors` painted over `rgba` with
// `opacity` in [0, 1] for each label's palette colour.
export function overlayPixels(rgba, labels, palette, opacity, out) {
  const keep = 1 - opacity;
  for (let i = 0, j = 0; i < labels.length; i++, j += 4) {
    const color = palette[labels[i]] || [0, 0, 0];
    out[j] = keep * rgba[j] + opacity * color[0];
    out[j + 1] = keep * rgba[j + 1] + opacity * color[1];
    out[j + 2] = keep * rgba[j + 2] + opacity * color[2];
    out[j + 3] = 255;
  }
  return out;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// A greyscale PNG of class ids [height, width]: 8-bit, or 16-bit for a
// Uint16Array (more than 256 classes), as tf-enet-predict writes them.
// Compressed with the browser's (or Node's) CompressionStream, whose
// "deflate" format is the zlib stream PNG stores.
export async function encodeLabelPng(labels, height, width) {
  const depth = labels instanceof Uint16Array ? 16 : 8;
  const bytesPerPixel = depth / 8;
  const raw = new Uint8Array(height * (1 + width * bytesPerPixel));
  for (let y = 0; y < height; y++) {
    const o = y * (1 + width * bytesPerPixel);  // Filter byte 0: none.
    for (let x = 0; x < width; x++) {
      const v = labels[y * width + x];
      if (depth === 8) raw[o + 1 + x] = v;
      else {
        raw[o + 1 + 2 * x] = v >> 8;  // PNG samples are big-endian.
        raw[o + 2 + 2 * x] = v & 0xff;
      }
    }
  }
  const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"));
  const compressed = new Uint8Array(await new Response(stream).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = depth;
  header[9] = 0;  // Greyscale; compression, filter and interlace 0.
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob(
    [signature, chunk("IHDR", header), chunk("IDAT", compressed), chunk("IEND", new Uint8Array())],
    { type: "image/png" },
  );
}
