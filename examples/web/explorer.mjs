// The latent-space explorer: loads a keras-vae export bundle and runs its ONNX decoder and
// encoder in the browser with onnxruntime-web.
//
// The bundle is served at ./bundle/ (or ?bundle=URL), onnxruntime-web's files at ./ort/;
// ?compare=URL names a second bundle (an autoencoder, say) to interpolate beside it.
// Every model file is checked against the sha256 in manifest.json before it is used.
// window.kerasVae exposes decode/encode (and sampleSeeds) for scripts and tests.
//
// A two-level VAE's bundle (manifest.sampling.graph names its sampler) is shown through its
// lower code z1: the plane, the sliders and encoding move through z1, the decoder's input;
// "Samples from the prior" runs the sampler graph, which draws z2 ~ N(0, I), then z1, then
// the image, from each seed.

// The bundle format this reader knows: keras_vae_inference/bundle.py defines it.
const FORMAT = "keras-vae-bundle";
const FORMAT_VERSION = 3;
const SCALE = 6; // screen pixels per image pixel

class BundleError extends Error {}

const $ = (id) => document.getElementById(id);

// The URL of the bundle named by the page's query parameter `name`, or of `fallback`.
function bundleBase(name, fallback) {
  const given = new URLSearchParams(location.search).get(name) || fallback;
  if (!given) return null;
  return new URL(given.endsWith("/") ? given : `${given}/`, location.href);
}

async function fetchOk(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new BundleError(`Could not fetch ${what} (${url}): ${error.message}.`);
  }
  if (!response.ok) {
    throw new BundleError(`Could not fetch ${what} (${url}): HTTP ${response.status}.`);
  }
  return response;
}

async function readManifest(base) {
  const response = await fetchOk(new URL("manifest.json", base), "the bundle's manifest.json");
  let manifest;
  try {
    manifest = await response.json();
  } catch {
    throw new BundleError("The bundle's manifest.json is not valid JSON. Export the model again.");
  }
  if (manifest.format !== FORMAT) {
    throw new BundleError(`Expected a ${FORMAT} bundle. Received: format ${manifest.format}.`);
  }
  if (manifest.format_version !== FORMAT_VERSION) {
    throw new BundleError(
      `Expected bundle format version ${FORMAT_VERSION}. Received: version ` +
        `${manifest.format_version}. Export the model again with this keras-vae.`,
    );
  }
  return manifest;
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function checkedBytes(base, manifest, file) {
  const entry = manifest.files[file];
  if (!entry) throw new BundleError(`manifest.json does not list ${file}. Export the model again.`);
  const bytes = await (await fetchOk(new URL(file, base), file)).arrayBuffer();
  const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (digest !== entry.sha256) {
    throw new BundleError(
      `${file} does not match the sha256 in manifest.json (expected ${entry.sha256.slice(0, 12)}…, ` +
        `received ${digest.slice(0, 12)}…): the file was changed or damaged. Export the model again.`,
    );
  }
  return new Uint8Array(bytes);
}

// WebGPU where the browser has an adapter, else WebAssembly (threaded when the page is
// cross-origin isolated). Each backend has its own onnxruntime-web entry: the wasm one
// loads half the WebAssembly.
async function loadRuntime() {
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  const backend = adapter ? "webgpu" : "wasm";
  const ort = await import(backend === "webgpu" ? "./ort/ort.webgpu.min.mjs" : "./ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency) : 1;
  // Inference in onnxruntime-web's worker: the page stays responsive while it decodes.
  ort.env.wasm.proxy = true;
  return { ort, backend };
}

async function loadBundle(base, { ort, backend }) {
  const manifest = await readManifest(base);
  const entry = manifest.versions[String(manifest.latest_version)];
  const sessions = {};
  const sampler = manifest.sampling.graph;
  for (const part of ["decoder", "encoder", ...(sampler ? [sampler] : [])]) {
    const bytes = await checkedBytes(base, manifest, entry.onnx[part]);
    sessions[part] = await ort.InferenceSession.create(bytes, { executionProviders: [backend] });
  }
  const explorer = entry.explorer
    ? readExplorer(JSON.parse(new TextDecoder().decode(await checkedBytes(base, manifest, entry.explorer))))
    : null;
  const [height, width, channels] = manifest.model.image_shape;
  // A conditional VAE's networks also take the class, as one-hot rows `labels`.
  const classes = manifest.model.num_classes;
  // The tensors' names, as the manifest's signatures list them: z (and labels) -> image;
  // images (and labels) -> mean, log_var.
  const names = (values) => values.map((tensor) => tensor.name);
  const [latentInput, labelsInput] = names(manifest.decoder.inputs);
  const [imageOutput] = names(manifest.decoder.outputs);
  const [imagesInput] = names(manifest.encoder.inputs);
  const [meanOutput, logVarOutput] = names(manifest.encoder.outputs);
  const oneHot = (n) => {
    const rows = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) rows[i * classes + vae.label] = 1;
    return { [labelsInput]: new ort.Tensor("float32", rows, [n, classes]) };
  };
  const vae = {
    explorer,
    manifest,
    name: entry.model.name,
    backend,
    threads: ort.env.wasm.numThreads,
    latentDim: manifest.model.latent_dim,
    // A two-level VAE's upper code z2 has this many dimensions; null for one level.
    topLatentDim: manifest.model.top_latent_dim ?? null,
    imageShape: [height, width, channels],
    // A conditional VAE's class names, and the class every decode and encode uses.
    classNames: classes
      ? entry.training?.class_names || Array.from({ length: classes }, (_, k) => String(k))
      : null,
    label: 0,
    // z: Float32Array of n * latent_dim numbers; returns n images [H, W, C], flattened.
    async decode(z, n) {
      const input = new ort.Tensor("float32", Float32Array.from(z), [n, vae.latentDim]);
      const outputs = await sessions.decoder.run({ [latentInput]: input, ...(classes && oneHot(n)) });
      return outputs[imageOutput].data;
    },
    // images: Float32Array of n images [H, W, C] in [0, 1]; returns the posterior's mean and
    // log-variance, each n * latent_dim numbers.
    async encode(images, n) {
      const input = new ort.Tensor("float32", Float32Array.from(images), [n, height, width, channels]);
      const outputs = await sessions.encoder.run({ [imagesInput]: input, ...(classes && oneHot(n)) });
      return { mean: outputs[meanOutput].data, logVar: outputs[logVarOutput].data };
    },
    // A two-level VAE's sampler graph: one image per seed (integers in [0, 2**63 - 1]),
    // the draws of ExportedVAE.draw and of the Keras model's sample_from_seeds.
    async sampleSeeds(seeds) {
      const input = new ort.Tensor("int64", BigInt64Array.from(seeds, BigInt), [seeds.length]);
      const outputs = await sessions[sampler].run({ [manifest[sampler].inputs[0].name]: input });
      return outputs[manifest[sampler].outputs[0].name].data;
    },
    // The images decoded at `steps` evenly spaced points from code a to code b, ends included.
    async interpolate(a, b, steps) {
      const path = new Float32Array(steps * vae.latentDim);
      for (let s = 0; s < steps; s++) {
        const w = s / (steps - 1);
        for (let i = 0; i < vae.latentDim; i++) path[s * vae.latentDim + i] = (1 - w) * a[i] + w * b[i];
      }
      return vae.decode(path, steps);
    },
  };
  return vae;
}

// The explorer data of a bundle version (keras_vae/explorer_data.py writes it).
function readExplorer(data) {
  const bytes = Uint8Array.from(atob(data.pixels), (c) => c.charCodeAt(0));
  return {
    count: data.count,
    images: Float32Array.from(bytes, (b) => b / 255),
    labels: data.labels,
    classNames: data.class_names,
    codes: data.codes.map((code) => Float32Array.from(code)),
    plane: data.plane,
  };
}

// The plane to move in: the bundle's, else the first two latent axes.
function planeOf(vae) {
  if (vae.explorer?.plane) return vae.explorer.plane;
  if (vae.latentDim < 2) return null;
  const axis = (k) => Array.from({ length: vae.latentDim }, (_, i) => (i === k ? 1 : 0));
  return { center: new Array(vae.latentDim).fill(0), directions: [axis(0), axis(1)], scales: [1, 1] };
}

// N(0, I) draws from a seeded generator (mulberry32 and Box-Muller), as examples/node.
function priorLatents(count, latentDim, seed, temperature) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Float32Array.from({ length: count * latentDim }, () => temperature * normal());
}

// Draws n images [H, W, C] (values in [0, 1]) on a canvas, `columns` per row, each image
// pixel `scale` screen pixels wide.
function drawImages(canvas, data, n, [height, width, channels], columns = n, scale = SCALE) {
  const rows = Math.ceil(n / columns);
  canvas.width = columns * width * scale;
  canvas.height = rows * height * scale;
  const pixels = new ImageData(columns * width, rows * height);
  for (let i = 0; i < n; i++) {
    const [top, left] = [Math.floor(i / columns) * height, (i % columns) * width];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = ((i * height + y) * width + x) * channels;
        const target = ((top + y) * columns * width + left + x) * 4;
        for (let c = 0; c < 3; c++) {
          pixels.data[target + c] = 255 * data[source + (channels === 1 ? 0 : c)];
        }
        pixels.data[target + 3] = 255;
      }
    }
  }
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  const full = new OffscreenCanvas(pixels.width, pixels.height);
  full.getContext("2d").putImageData(pixels, 0, 0);
  context.drawImage(full, 0, 0, canvas.width, canvas.height);
}

// A picture (an image file's bitmap, a canvas) as one image [H, W, C] in [0, 1], resized
// to the model's shape.
function imageFrom(picture, [height, width, channels]) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  context.drawImage(picture, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const image = new Float32Array(height * width * channels);
  for (let p = 0; p < height * width; p++) {
    const [r, g, b] = [rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]];
    if (channels === 1) image[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    else for (let c = 0; c < channels; c++) image[p * channels + c] = rgba[4 * p + c] / 255;
  }
  return image;
}

function showCard(vae) {
  const { manifest } = vae;
  const training = manifest.versions[String(manifest.latest_version)].training || {};
  // A run's provenance (keras_vae.run_summary); bundles exported before it named the test
  // figures test_metrics.
  const test = training.test || training.test_metrics || {};
  const rows = [
    ["Images", `${vae.imageShape.join("×")}, ${manifest.model.likelihood} likelihood`],
    [
      "Latent dimensions",
      vae.topLatentDim ? `${vae.latentDim} (z1), ${vae.topLatentDim} (z2, above z1)` : vae.latentDim,
    ],
    ...(vae.classNames ? [["Conditioned on", `${vae.classNames.length} classes`]] : []),
    ["Trained on", [training.dataset, training.binarized ? "binarised" : ""].filter(Boolean).join(", ")],
    ["Preset, epochs", [training.preset, training.epochs].filter((v) => v !== undefined).join(", ")],
    [
      "Test loss",
      test.loss === undefined
        ? "not recorded"
        : `${test.loss.toFixed(2)} = ${test.reconstruction_loss.toFixed(2)} reconstruction + ` +
          `${(test.kl_loss ?? 0).toFixed(2)} KL (${training.units || "nats per example"})`,
    ],
    ["Version", `${manifest.latest_version} of ${Object.keys(manifest.versions).join(", ")}`],
    ["Runs on", `onnxruntime-web, ${vae.backend}, ${vae.threads} thread(s)`],
  ];
  $("card").replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const [dt, dd] = [document.createElement("dt"), document.createElement("dd")];
      dt.textContent = term;
      dd.textContent = String(value || "unknown");
      return [dt, dd];
    }),
  );
}

// Runs `task` at most once at a time; a request made meanwhile runs once it ends, with the
// latest state, so dragging a slider never queues a backlog of decodes.
function latest(task) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      }
    }
  };
}

// The latent plane: a canvas that shows the test codes and where z is, and sets z on a
// click or the arrow keys. Coordinates are in standard deviations of the codes, ±3.
function setUpPlane(vae, plane, setZ) {
  const canvas = $("plane");
  const extent = 3;
  const toCanvas = (u, v) => [((u + extent) / (2 * extent)) * canvas.width, ((extent - v) / (2 * extent)) * canvas.height];
  const project = (z) =>
    plane.directions.map((d, k) => d.reduce((sum, dk, i) => sum + dk * (z[i] - plane.center[i]), 0) / plane.scales[k]);
  let position = [0, 0];
  const draw = () => {
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#ccc";
    context.beginPath();
    context.moveTo(canvas.width / 2, 0);
    context.lineTo(canvas.width / 2, canvas.height);
    context.moveTo(0, canvas.height / 2);
    context.lineTo(canvas.width, canvas.height / 2);
    context.stroke();
    context.fillStyle = "#888";
    for (const code of vae.explorer?.codes || []) {
      const [x, y] = toCanvas(...project(code));
      context.fillRect(x - 2, y - 2, 4, 4);
    }
    const [x, y] = toCanvas(...position);
    context.strokeStyle = "#c00";
    context.lineWidth = 2;
    context.strokeRect(x - 5, y - 5, 10, 10);
    context.lineWidth = 1;
  };
  const moveTo = (u, v) => {
    position = [Math.max(-extent, Math.min(extent, u)), Math.max(-extent, Math.min(extent, v))];
    const z = Float32Array.from(plane.center, (c, i) =>
      c + plane.directions.reduce((sum, d, k) => sum + position[k] * plane.scales[k] * d[i], 0));
    draw();
    setZ(z, false);
  };
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const u = ((event.clientX - box.left) / box.width) * 2 * extent - extent;
    const v = extent - ((event.clientY - box.top) / box.height) * 2 * extent;
    moveTo(u, v);
  });
  canvas.addEventListener("keydown", (event) => {
    const steps = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, 0.1], ArrowDown: [0, -0.1] };
    if (!(event.key in steps)) return;
    event.preventDefault();
    moveTo(position[0] + steps[event.key][0], position[1] + steps[event.key][1]);
  });
  draw();
  // Where z is, after the sliders or an encoded image moved it.
  return (z) => {
    position = project(z);
    draw();
  };
}

// Test images to pick two of; the strip shows the decoded path between their codes.
function setUpGallery(vae) {
  const { explorer } = vae;
  const size = vae.imageShape[0] * vae.imageShape[1] * vae.imageShape[2];
  const picked = [];
  const { compare } = vae;
  const show = async () => {
    if (picked.length < 2) return;
    for (const [model, canvas] of [[vae, "interpolation"], [compare, "interpolation-compare"]]) {
      if (!model) continue;
      const [a, b] = picked.map((i) => model.explorer.codes[i]);
      drawImages($(canvas), await model.interpolate(a, b, 8), 8, model.imageShape, 8, SCALE / 2);
    }
  };
  $("interpolation-caption").textContent = vae.name;
  if (compare) {
    $("compare-figure").hidden = false;
    $("interpolation-compare-caption").textContent = compare.name;
  }
  const buttons = explorer.codes.map((_, i) => {
    const button = document.createElement("button");
    const name = explorer.classNames && explorer.labels ? explorer.classNames[explorer.labels[i]] : "";
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `test image ${i + 1}${name ? `: ${name}` : ""}`);
    button.title = name;
    const thumbnail = document.createElement("canvas");
    drawImages(thumbnail, explorer.images.subarray(i * size, (i + 1) * size), 1, vae.imageShape, 1, 2);
    button.append(thumbnail);
    button.addEventListener("click", () => {
      picked.push(i);
      if (picked.length > 2) picked.shift();
      buttons.forEach((other, j) => other.setAttribute("aria-pressed", String(picked.includes(j))));
      show().catch(showError);
    });
    $("gallery").append(button);
    return button;
  });
  $("gallery-section").hidden = false;
  // Start with the first image and the first of another class.
  const other = explorer.labels ? explorer.labels.findIndex((label) => label !== explorer.labels[0]) : -1;
  buttons[0].click();
  buttons[Math.max(other, 1) % buttons.length].click();
}

function setUp(vae) {
  showCard(vae);
  const sample = async () => {
    const seed = Number($("seed").value);
    if (vae.topLatentDim) {
      const seeds = Array.from({ length: 16 }, (_, i) => seed + i);
      drawImages($("samples"), await vae.sampleSeeds(seeds), 16, vae.imageShape, 4, SCALE / 2);
      return;
    }
    const temperature = Number($("temperature").value);
    const z = priorLatents(16, vae.latentDim, seed, temperature);
    drawImages($("samples"), await vae.decode(z, 16), 16, vae.imageShape, 4, SCALE / 2);
  };
  if (vae.topLatentDim) {
    // The sampler graph draws at temperature 1, and the page moves through z1.
    $("temperature").disabled = true;
    $("temperature").title = "A two-level VAE's sampler graph draws at temperature 1.";
    $("latent-title").textContent = "Move through z1, the lower of the two latent spaces";
    $("sliders").querySelector("legend").textContent = "z1";
  }
  $("temperature").addEventListener("input", () => {
    $("temperature-value").value = Number($("temperature").value).toFixed(1);
  });
  $("prior").addEventListener("submit", (event) => {
    event.preventDefault();
    sample().catch(showError);
  });

  const z = new Float32Array(vae.latentDim);
  const decodeSliders = latest(async () => {
    drawImages($("decoded"), await vae.decode(z, 1), 1, vae.imageShape);
  });
  if (vae.classNames) {
    // A conditional VAE: the class every picture on the page is decoded for.
    $("class").replaceChildren(
      ...vae.classNames.map((name, k) => Object.assign(document.createElement("option"), { value: k, textContent: name })),
    );
    $("class-row").hidden = false;
    $("class").addEventListener("change", () => {
      vae.label = Number($("class").value);
      Promise.all([sample(), decodeSliders()]).catch(showError);
    });
  }
  const sliders = Array.from({ length: vae.latentDim }, (_, i) => {
    const label = document.createElement("label");
    const slider = Object.assign(document.createElement("input"), {
      type: "range", min: "-3", max: "3", step: "0.05", value: "0", id: `z${i}`,
    });
    label.htmlFor = slider.id;
    label.textContent = `z${i + 1}`;
    slider.addEventListener("input", () => {
      z[i] = Number(slider.value);
      showOnPlane(z);
      decodeSliders().catch(showError);
    });
    $("sliders").append(label, slider);
    return slider;
  });
  let showOnPlane = () => {};
  const setZ = (values) =>
    values.forEach((value, i) => {
      z[i] = value;
      sliders[i].value = String(value);
    });
  // Sets z and decodes it; the plane, which moved z itself, passes movePlaneMarker false.
  const setSliders = (values, movePlaneMarker = true) => {
    setZ(values);
    if (movePlaneMarker) showOnPlane(z);
    return decodeSliders().catch(showError);
  };
  const plane = planeOf(vae);
  if (plane) showOnPlane = setUpPlane(vae, plane, setSliders);
  else $("plane").hidden = true;
  if (vae.explorer) setUpGallery(vae);
  $("zero").addEventListener("click", () => setSliders(new Float32Array(vae.latentDim)));
  // Start where the test codes are centred.
  if (plane) setZ(plane.center);

  const encodePicture = async (picture, redraw = true) => {
    const image = imageFrom(picture, vae.imageShape);
    if (redraw) drawImages($("input"), image, 1, vae.imageShape);
    const { mean } = await vae.encode(image, 1);
    vae.lastEncoding = { image, mean }; // for scripts: what the page encoded last
    drawImages($("reconstruction"), await vae.decode(mean, 1), 1, vae.imageShape);
    $("code").textContent = `Posterior mean: [${[...mean].map((v) => v.toFixed(2)).join(", ")}]`;
    await setSliders(mean);
  };
  const encodeFile = (file) =>
    createImageBitmap(file).then(
      (bitmap) => encodePicture(bitmap).catch(showError),
      () => showNote(`Could not read ${file.name} as an image.`),
    );
  $("image-file").addEventListener("change", () => {
    if ($("image-file").files[0]) encodeFile($("image-file").files[0]);
  });
  setUpDrawing($("input"), encodeFile);
  $("encode-drawing").addEventListener("click", () => encodePicture($("input"), false).catch(showError));
  $("clear-drawing").addEventListener("click", () => clearCanvas($("input")));
  return Promise.all([sample(), decodeSliders()]);
}

function clearCanvas(canvas) {
  const context = canvas.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
}

// The input canvas: draw on it with a pointer, or drop an image file on it.
function setUpDrawing(canvas, encodeFile) {
  clearCanvas(canvas);
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) / box.width) * canvas.width,
            ((event.clientY - box.top) / box.height) * canvas.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const context = canvas.getContext("2d");
    const next = point(event);
    Object.assign(context, { strokeStyle: "#fff", lineWidth: canvas.width / 10, lineCap: "round" });
    context.beginPath();
    context.moveTo(...last);
    context.lineTo(...next);
    context.stroke();
    last = next;
  });
  canvas.addEventListener("pointerup", () => (last = null));
  canvas.addEventListener("dragover", (event) => event.preventDefault());
  canvas.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) encodeFile(file);
  });
}

// A message about the user's input (not the bundle), in the status line.
function showNote(message) {
  $("status").textContent = message;
}

function showError(error) {
  const message = error instanceof BundleError ? error.message : `Unexpected error: ${error.message || error}`;
  $("status").textContent = "";
  $("error").textContent = message;
  $("error").hidden = false;
}

// The second bundle, if it can interpolate the same test images; else null, said why.
async function loadComparison(vae, runtime) {
  const base = bundleBase("compare", null);
  if (!base) return null;
  try {
    const other = await loadBundle(base, runtime);
    const same = other.explorer && vae.explorer && other.explorer.count === vae.explorer.count &&
      other.imageShape.join() === vae.imageShape.join();
    if (!same) throw new BundleError("it does not ship the same test images (explorer.json).");
    return other;
  } catch (error) {
    $("compare-note").textContent = `The comparison bundle is not shown: ${error.message}`;
    return null;
  }
}

const ready = (async () => {
  const started = performance.now();
  const runtime = await loadRuntime();
  const vae = await loadBundle(bundleBase("bundle", "bundle/"), runtime);
  vae.compare = await loadComparison(vae, runtime);
  vae.loadMs = performance.now() - started;
  await setUp(vae);
  document.querySelector("main").hidden = false;
  $("status").textContent = `Loaded in ${Math.round(vae.loadMs)} ms (${vae.backend}).`;
  return vae;
})();
ready.catch((error) => {
  document.querySelector("main").hidden = true;
  showError(error);
});
window.kerasVae = { ready };
