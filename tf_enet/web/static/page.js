// The page of a `tf-enet-export --format web` site: loads model_info.json
// and the ONNX model into onnxruntime-web, segments chosen, dropped or
// webcam images, and shows the overlay, legend, class shares and timing.
//
// window.enet reports the page's state for scripts (the browser test, the
// benchmark): status ("loading", "ready", "busy", "error"), backend, error
// (the message shown), result ({name, width, height, labels, frameMs,
// modelMs}) of the latest image; enet.open(file) segments a File as
// choosing it does and resolves when done.

import {
  classShares, cropLogits, encodeLabelPng, fitSize, overlayPixels, padImage, resizeArgmax,
  resizeImage,
} from "./pixels.js";

const MODEL_INFO = "model_info.json";
const MODEL_INFO_FORMAT = "tf_enet/web/1";
const RUNTIME = "./ort/ort.webgpu.min.mjs";
// The webcam's time per frame is averaged over this many frames.
const AVERAGE_FRAMES = 10;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const enet = { status: "loading", backend: null, error: null, result: null };
window.enet = enet;

let ort = null;
let session = null;
let info = null;
let current = null;  // {name, rgba, width, height, labels}
let busy = false;
let pending = null;  // The image chosen while another was being segmented.
let webcam = null;  // {stream, times}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = false;
  enet.error = text;
}

function clearMessage() {
  $("message").hidden = true;
  enet.error = null;
}

function fail(text) {
  showMessage(text);
  enet.status = "error";
  $("runtime").textContent = "Not ready.";
}

const SERVE_HINT = "Serve the folder over HTTP, e.g. python -m http.server -d <folder>, " +
  "and open http://localhost:8000/.";
const EXPORT_HINT = "Export the site again: tf-enet-export --format web --output <folder>.";

async function fetchBytes(name) {
  let response;
  try {
    response = await fetch(name);
  } catch (error) {
    throw new Error(location.protocol === "file:"
      ? `Cannot load ${name}: a page opened as a file cannot read its model. ${SERVE_HINT}`
      : `Cannot load ${name}: ${error.message}. Is the server still running?`);
  }
  if (!response.ok) {
    throw new Error(`Cannot load ${name}: the server answered HTTP ${response.status}. ` +
      `Is this the folder tf-enet-export --format web wrote? ${EXPORT_HINT}`);
  }
  return response.arrayBuffer();
}

async function readModelInfo() {
  const bytes = await fetchBytes(MODEL_INFO);
  let parsed;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new Error(`${MODEL_INFO} is not valid JSON (${error.message}). ${EXPORT_HINT}`);
  }
  if (parsed.format !== MODEL_INFO_FORMAT) {
    throw new Error(`${MODEL_INFO} has format ${JSON.stringify(parsed.format)}; this page ` +
      `reads ${MODEL_INFO_FORMAT}. ${EXPORT_HINT}`);
  }
  return parsed;
}

function missingFeatures() {
  const missing = [];
  if (typeof WebAssembly !== "object") missing.push("WebAssembly");
  if (typeof createImageBitmap !== "function") missing.push("createImageBitmap");
  if (typeof CompressionStream !== "function") missing.push("CompressionStream");
  return missing;
}

// WebGPU where the browser has a usable adapter, WebAssembly otherwise;
// ?backend=wasm or ?backend=webgpu asks for one.
async function createSession(model) {
  const wanted = params.get("backend");
  const threads = crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  let gpuProblem = "";
  if (wanted !== "wasm") {
    const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    if (adapter) {
      try {
        const created = await ort.InferenceSession.create(model, { executionProviders: ["webgpu"] });
        return { created, backend: "WebGPU" };
      } catch (error) {
        gpuProblem = ` (WebGPU failed: ${error.message})`;
      }
    } else {
      gpuProblem = navigator.gpu ? " (no WebGPU adapter)" : " (no WebGPU in this browser)";
    }
  }
  const created = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  const isolation = crossOriginIsolated ? ""
    : "; single-threaded, since the page is not cross-origin isolated (its server sends no " +
      "COOP/COEP headers)";
  return {
    created,
    backend: `WebAssembly, ${threads} thread${threads > 1 ? "s" : ""}${isolation}${gpuProblem}`,
  };
}

function buildLegend() {
  const body = $("legend").tBodies[0];
  body.replaceChildren();
  info.class_names.forEach((name, c) => {
    const row = body.insertRow();
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${info.palette[c].join(",")})`;
    row.insertCell().append(swatch);
    row.insertCell().textContent = name;
    row.insertCell().textContent = "–";
  });
}

function updateLegend(shares) {
  const rows = $("legend").tBodies[0].rows;
  shares.forEach((share, c) => {
    rows[c].cells[2].textContent = `${(100 * share).toFixed(1)} %`;
  });
}

function render() {
  if (!current) return;
  const canvas = $("view");
  canvas.width = current.width;
  canvas.height = current.height;
  const context = canvas.getContext("2d");
  const out = context.createImageData(current.width, current.height);
  const opacity = Number($("opacity").value) / 100;
  overlayPixels(current.rgba, current.labels, info.palette, opacity, out.data);
  context.putImageData(out, 0, 0);
}

// The RGBA pixels of an image or video frame at its own size.
function readPixels(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  return context.getImageData(0, 0, width, height).data;
}

// Segments one frame as tf_enet.inference.Predictor.predict does: the
// model at its input size (the training size; with "fit": "letterbox", as
// exports write it, the image keeps its aspect ratio inside it and the
// padding's logits are cropped off), the logits resized back to the
// frame's size, the argmax.
async function segment(source, width, height, name) {
  const start = performance.now();
  const rgba = readPixels(source, width, height);
  const modelHeight = info.input.height ?? height;
  const modelWidth = info.input.width ?? width;
  const [contentHeight, contentWidth] = info.input.fit === "letterbox"
    ? fitSize(height, width, modelHeight, modelWidth)
    : [modelHeight, modelWidth];
  const resized = resizeImage(rgba, height, width, contentHeight, contentWidth);
  const input = padImage(
    resized, contentHeight, contentWidth, modelHeight, modelWidth, info.input.pad_value ?? 0);
  const tensor = new ort.Tensor("float32", input, [1, modelHeight, modelWidth, 3]);
  const modelStart = performance.now();
  const outputs = await session.run({ [session.inputNames[0]]: tensor });
  const logits = outputs[session.outputNames[0]];
  const data = await logits.getData();
  const modelMs = performance.now() - modelStart;
  const numClasses = logits.dims[3];
  const content = cropLogits(data, modelWidth, numClasses, contentHeight, contentWidth);
  const labels = resizeArgmax(content, contentHeight, contentWidth, numClasses, height, width);
  tensor.dispose?.();
  logits.dispose?.();
  current = { name, rgba, width, height, labels };
  render();
  updateLegend(classShares(labels, numClasses));
  const frameMs = performance.now() - start;
  enet.result = { name, width, height, labels, frameMs, modelMs };
  $("save-labels").disabled = false;
  $("save-overlay").disabled = false;
  $("hint").hidden = true;
  return { frameMs, modelMs };
}

function showTiming(frameMs, modelMs, note = "") {
  $("timing").textContent = `${frameMs.toFixed(0)} ms per frame (model ${modelMs.toFixed(0)} ms)` +
    ` · ${current.width}×${current.height}${note}`;
}

async function openFile(file) {
  if (!file || !session) return;
  if (busy) {
    pending = file;
    return;
  }
  let bitmap;
  try {
    // from-image: phone photos the right way up (EXIF orientation); no
    // colour conversion, as the Python decoders read the stored values.
    bitmap = await createImageBitmap(file, {
      imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none",
    });
  } catch {
    showMessage(`${file.name} is not an image this browser can decode ` +
      `(${file.type || "unknown type"}); choose a JPEG, PNG, WebP or BMP image.`);
    return;
  }
  stopWebcam();
  busy = true;
  enet.status = "busy";
  try {
    clearMessage();
    const { frameMs, modelMs } = await segment(bitmap, bitmap.width, bitmap.height, file.name);
    showTiming(frameMs, modelMs);
  } catch (error) {
    showMessage(`Cannot segment ${file.name}: ${error.message}`);
  } finally {
    bitmap.close();
    busy = false;
    enet.status = "ready";
  }
  if (pending) {
    const next = pending;
    pending = null;
    await openFile(next);
  }
}

function webcamError(error) {
  if (error.name === "NotAllowedError") {
    return "The webcam was refused. Allow camera access for this page in the browser's " +
      "site settings, then press Start the webcam again.";
  }
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
    return "No webcam was found on this device.";
  }
  if (error.name === "NotReadableError") {
    return "The webcam is in use by another application; close it and try again.";
  }
  return `The webcam could not start: ${error.message}`;
}

async function startWebcam() {
  if (webcam) {
    stopWebcam();
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    showMessage(isSecureContext
      ? "This browser gives pages no webcam access (navigator.mediaDevices.getUserMedia)."
      : "Browsers give the webcam only to secure pages: open this page at " +
        "http://localhost:<port>/ on this machine, or serve it over https.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment" }, audio: false,
    });
  } catch (error) {
    showMessage(webcamError(error));
    return;
  }
  clearMessage();
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  webcam = { stream, times: [] };
  $("webcam").textContent = "Stop the webcam";
  while (webcam && webcam.stream === stream) {
    if (!busy && video.videoWidth > 0) {
      busy = true;
      enet.status = "busy";
      try {
        const { frameMs, modelMs } = await segment(
          video, video.videoWidth, video.videoHeight, "webcam");
        webcam?.times.push([frameMs, modelMs]);
        const times = webcam?.times.slice(-AVERAGE_FRAMES) ?? [[frameMs, modelMs]];
        const mean = (i) => times.reduce((sum, t) => sum + t[i], 0) / times.length;
        showTiming(mean(0), mean(1), ` · webcam, mean of ${times.length} frames`);
      } catch (error) {
        showMessage(`Cannot segment the webcam frame: ${error.message}`);
        stopWebcam();
      } finally {
        busy = false;
        enet.status = "ready";
      }
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
}

function stopWebcam() {
  if (!webcam) return;
  webcam.stream.getTracks().forEach((track) => track.stop());
  webcam = null;
  $("video").srcObject = null;
  $("webcam").textContent = "Start the webcam";
}

function stem() {
  const name = current?.name ?? "image";
  return name.replace(/\.[^.]*$/, "") || "image";
}

function download(blob, fileName) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = fileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function connect() {
  $("file").addEventListener("change", (event) => openFile(event.target.files[0]));
  $("webcam").addEventListener("click", startWebcam);
  $("opacity").addEventListener("input", render);
  $("save-labels").addEventListener("click", async () => {
    if (!current) return;
    const png = await encodeLabelPng(current.labels, current.height, current.width);
    download(png, `${stem()}_labels.png`);
  });
  $("save-overlay").addEventListener("click", () => {
    if (!current) return;
    $("view").toBlob((blob) => download(blob, `${stem()}_overlay.png`), "image/png");
  });
  const drop = $("drop");
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  document.addEventListener("dragleave", () => drop.classList.remove("over"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer?.files?.[0];
    if (file) openFile(file);
  });
}

async function main() {
  const missing = missingFeatures();
  if (missing.length) {
    fail(`This browser lacks ${missing.join(", ")}, which the page needs; ` +
      "use a current Chrome, Edge, Firefox or Safari.");
    return;
  }
  try {
    info = await readModelInfo();
  } catch (error) {
    fail(error.message);
    return;
  }
  buildLegend();
  try {
    ort = await import(RUNTIME);
  } catch (error) {
    fail(`Cannot load the JavaScript runtime ${RUNTIME}: ${error.message}. ${EXPORT_HINT}`);
    return;
  }
  try {
    const model = new Uint8Array(await fetchBytes(info.model));
    const { created, backend } = await createSession(model);
    session = created;
    enet.backend = backend;
  } catch (error) {
    const reason = error.message.startsWith("Cannot load") ? error.message
      : `Cannot load the model ${info.model}: ${error.message}. The file is damaged or not ` +
        `an ONNX model. ${EXPORT_HINT}`;
    fail(reason);
    return;
  }
  const size = info.input.height ? `${info.input.height}×${info.input.width}` : "each image's size";
  $("runtime").textContent = `${info.name}, ${info.class_names.length} classes, run at ${size} ` +
    `with onnxruntime-web ${info.runtime.version} on ${enet.backend}.`;
  connect();
  enet.open = openFile;
  $("webcam").disabled = false;
  enet.status = "ready";
}

main();
