// Decodes latent vectors with a keras-vae export bundle in Node.js and writes a PNG grid.
//
//   node decode.mjs BUNDLE_DIR LATENTS.json OUT.png [--values OUT.json] [--timings OUT.json]
//   node decode.mjs BUNDLE_DIR --prior N OUT.png [...] [--threads N] [--seed S]
//
// LATENTS.json holds an array of latent vectors (arrays of latent_dim numbers);
// --prior N draws N images from the model's prior instead, seeded by --seed (default 0):
// for a one-level VAE, N vectors of N(0, I) decoded (mulberry32 seeded by the seed's low
// 32 bits); for a two-level VAE (whose manifest's
// sampling names a graph), the bundle's sampler graph run on the seeds S, S+1, ..., S+N-1,
// the draws of ExportedVAE.sample(N, seed=S) and of the Keras model's sample_from_seeds.
// --values also writes the decoded images as JSON: {"shape": [...], "data": [...]}.
// --timings times the decode again after two warm-up calls (at least 0.5 s and 5 calls)
// and writes the milliseconds per call as JSON: {"times": [...]}; --threads sets
// onnxruntime's intra-op threads (default: its own choice).
// A conditional VAE's bundle (manifest.model.num_classes) needs --labels: one class
// index per vector ("7" for all of them, or "0,1,2,..."), fed to the decoder one-hot.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import ort from "onnxruntime-node";
import { PNG } from "pngjs";

function fail(message) {
  console.error(`decode.mjs: ${message}`);
  process.exit(1);
}

function writeAtomically(file, data) {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, data);
  renameSync(temporary, file);
}

// The bundle format this reader knows: keras_vae_inference/bundle.py defines it.
const FORMAT = "keras-vae-bundle";
const FORMAT_VERSION = 3;

function readManifest(bundle) {
  const manifest = JSON.parse(readFileSync(path.join(bundle, "manifest.json"), "utf8"));
  if (manifest.format !== FORMAT) fail(`${bundle} is not a keras-vae bundle`);
  if (manifest.format_version !== FORMAT_VERSION) {
    fail(
      `${bundle} is a ${FORMAT} of format version ${manifest.format_version}; ` +
        `this reader knows version ${FORMAT_VERSION}. Export the model again.`,
    );
  }
  return manifest;
}

function checkedModelBytes(bundle, manifest, file) {
  const bytes = readFileSync(path.join(bundle, file));
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== manifest.files[file].sha256) {
    fail(`${file} does not match the sha256 in manifest.json; export the model again`);
  }
  return bytes;
}

function readLatents(file, latentDim) {
  const latents = JSON.parse(readFileSync(file, "utf8"));
  if (!Array.isArray(latents) || latents.length === 0) fail(`${file}: expected a non-empty array`);
  latents.forEach((z, i) => {
    if (!Array.isArray(z) || z.length !== latentDim || !z.every(Number.isFinite)) {
      fail(`${file}: vector ${i} must hold ${latentDim} finite numbers`);
    }
  });
  return latents;
}

// N vectors of N(0, I), from a seeded generator (mulberry32 and Box-Muller).
function priorLatents(count, latentDim, seed = 0) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Array.from({ length: count }, () => Array.from({ length: latentDim }, normal));
}

// One-hot rows [count, classes] of the classes "--labels" names: one for all, or one each.
function oneHotLabels(text, count, classes) {
  const indices = String(text).split(",").map(Number);
  const all = indices.length === 1 ? Array(count).fill(indices[0]) : indices;
  if (all.length !== count || !all.every((k) => Number.isInteger(k) && k >= 0 && k < classes)) {
    fail(
      `--labels expects one class index or ${count} of them, integers in [0, ${classes}), ` +
        `got ${text}`,
    );
  }
  const rows = new Float32Array(count * classes);
  all.forEach((k, i) => {
    rows[i * classes + k] = 1;
  });
  return rows;
}

// Tiles images [n, H, W, C] (values in [0, 1]) into a grid, 2 px apart on white.
function toPng(data, [n, height, width, channels]) {
  const columns = Math.min(n, 8);
  const rows = Math.ceil(n / columns);
  const png = new PNG({ width: columns * (width + 2) + 2, height: rows * (height + 2) + 2 });
  png.data.fill(255);
  for (let i = 0; i < n; i++) {
    const top = 2 + Math.floor(i / columns) * (height + 2);
    const left = 2 + (i % columns) * (width + 2);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = ((i * height + y) * width + x) * channels;
        const target = ((top + y) * png.width + left + x) * 4;
        for (let c = 0; c < 3; c++) {
          const value = data[source + (channels === 1 ? 0 : c)];
          png.data[target + c] = Math.round(Math.min(Math.max(value, 0), 1) * 255);
        }
      }
    }
  }
  return PNG.sync.write(png);
}

// Milliseconds per call of `run`, after two warm-up calls: at least 0.5 s and 5 calls.
async function timeCalls(run) {
  await run();
  await run();
  const times = [];
  const started = performance.now();
  while (times.length < 200 && (times.length < 5 || performance.now() - started < 500)) {
    const begin = performance.now();
    await run();
    times.push(performance.now() - begin);
  }
  return times;
}

async function main() {
  const args = process.argv.slice(2);
  const prior = args[1] === "--prior" ? args[2] : undefined;
  // With --prior N the latents argument is two words; the rest follows it alike.
  const [bundle, latentsFile, outFile, ...rest] =
    prior === undefined ? args : [args[0], undefined, ...args.slice(3)];
  if (!outFile) {
    fail(
      "usage: node decode.mjs BUNDLE_DIR (LATENTS.json | --prior N) OUT.png [--values OUT.json]",
    );
  }
  const options = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (!["--values", "--timings", "--threads", "--labels", "--seed"].includes(rest[i]) || rest[i + 1] === undefined) {
      fail(`unknown option or missing value: ${rest.slice(i, i + 2).join(" ")}`);
    }
    options[rest[i].slice(2)] = rest[i + 1];
  }
  const threads = options.threads === undefined ? undefined : Number(options.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
    fail(`--threads expects a positive integer, got ${options.threads}`);
  }

  const seedText = options.seed ?? "0";
  if (!/^[0-9]+$/.test(seedText) || BigInt(seedText) > 2n ** 63n - 1n) {
    fail(`--seed expects an integer in [0, 2**63 - 1], got ${seedText}`);
  }
  const seed = BigInt(seedText);

  const manifest = readManifest(bundle);
  const { latent_dim: latentDim, image_shape: imageShape, num_classes: classes } = manifest.model;
  if (classes === undefined && options.labels !== undefined) {
    fail("--labels is for a conditional VAE's bundle; this one takes z alone");
  }
  if (classes !== undefined && options.labels === undefined) {
    fail(`this bundle is a conditional VAE of ${classes} classes: pass --labels K (or K1,K2,...)`);
  }
  // The latest version, as TensorFlow Serving and Triton would serve it.
  const latest = manifest.versions[String(manifest.latest_version)];
  const sessionOptions = { graphOptimizationLevel: "all", ...(threads && { intraOpNumThreads: threads }) };
  const sampler = manifest.sampling.graph;
  let run, count;
  if (prior !== undefined && sampler) {
    // A two-level VAE: the sampler graph draws z2, z1 and the image from each seed.
    count = Number(prior);
    if (!Number.isInteger(count) || count < 1) fail(`--prior expects a positive integer, got ${prior}`);
    if (seed + BigInt(count) - 1n > 2n ** 63n - 1n) fail(`--seed plus --prior must stay below 2**63`);
    const session = await ort.InferenceSession.create(
      checkedModelBytes(bundle, manifest, latest.onnx[sampler]), sessionOptions,
    );
    const seeds = BigInt64Array.from({ length: count }, (_, i) => seed + BigInt(i));
    const feeds = { [manifest[sampler].inputs[0].name]: new ort.Tensor("int64", seeds, [count]) };
    const imageOutput = manifest[sampler].outputs[0].name;
    run = async () => (await session.run(feeds))[imageOutput];
  } else {
    let latents;
    if (prior !== undefined) {
      count = Number(prior);
      if (!Number.isInteger(count) || count < 1) fail(`--prior expects a positive integer, got ${prior}`);
      latents = priorLatents(count, latentDim, Number(seed % 2n ** 32n));
    } else {
      latents = readLatents(latentsFile, latentDim);
      count = latents.length;
    }
    const session = await ort.InferenceSession.create(
      checkedModelBytes(bundle, manifest, latest.onnx.decoder), sessionOptions,
    );
    // The tensors' names, as the manifest's signature lists them: latent vectors (z), then a
    // conditional model's one-hot labels; the mean image out.
    const [latentInput, labelsInput] = manifest.decoder.inputs.map((tensor) => tensor.name);
    const imageOutput = manifest.decoder.outputs[0].name;
    const feeds = {
      [latentInput]: new ort.Tensor("float32", Float32Array.from(latents.flat()), [count, latentDim]),
    };
    if (classes !== undefined) {
      const rows = oneHotLabels(options.labels, count, classes);
      feeds[labelsInput] = new ort.Tensor("float32", rows, [count, classes]);
    }
    run = async () => (await session.run(feeds))[imageOutput];
  }
  const image = await run();
  const shape = [count, ...imageShape];

  writeAtomically(outFile, toPng(image.data, shape));
  if (options.values) {
    writeAtomically(options.values, JSON.stringify({ shape, data: Array.from(image.data) }));
  }
  if (options.timings) {
    writeAtomically(options.timings, JSON.stringify({ times: await timeCalls(run) }));
  }
  console.log(`Decoded ${count} ${prior !== undefined && sampler ? "draws of the sampler" : "latent vectors"} to ${outFile}`);
}

main().catch((error) => fail(error.message));
