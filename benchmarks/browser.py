"""The decoder in a browser: the explorer page (examples/web) in headless Chromium.

Debian's `chromium` and its `chromedriver` (`make web-deps`) are driven by
Selenium; nothing is downloaded. The page and the bundle are served from
127.0.0.1 by examples/web/serve.py, with the headers that let onnxruntime-web
use two WebAssembly threads.
"""

from tests.support.browser import headless_chromium, run_in_page, serving_explorer

from .inference import benchmark_latents, decoder_row, keras_images, summarize_times

# Times vae.decode on one batch in the page: warm-up calls, then at least 0.5 s and 5 calls.
_TIME_DECODE = """
const [z, n] = args;
const output = await vae.decode(z, n);
await vae.decode(z, n);
const times = [];
const started = performance.now();
while (times.length < 200 && (times.length < 5 || performance.now() - started < 500)) {
  const begin = performance.now();
  await vae.decode(z, n);
  times.push(performance.now() - begin);
}
return { times, output: [...output], backend: vae.backend, threads: vae.threads,
         loadMs: vae.loadMs };
"""


def benchmark_browser(model, bundle_dir, log_path, batch_sizes=(1, 64)):
    """Times the bundle's decoder in the explorer page, in headless Chromium.

    Returns:
        Rows like `benchmark_decoder`'s (runtime, batch, timing, error against
        the Keras model), and the page's load time, backend and threads.
    """
    rows, page = [], {}
    with serving_explorer(bundle_dir, log_path) as url, headless_chromium() as driver:
        for batch in batch_sizes:
            z = benchmark_latents(model, batch)
            result = run_in_page(driver, url, _TIME_DECODE, z.ravel().tolist(), batch)
            if not result["ok"]:
                raise RuntimeError(f"The explorer page failed: {result['error']}")
            value = result["value"]
            page = {"backend": value["backend"], "threads": value["threads"],
                    "load_ms": page.get("load_ms", value["loadMs"])}  # fmt: skip
            runtime = f"onnxruntime-web, Chromium ({value['backend']}, {value['threads']} threads)"
            expected = keras_images(model, z)
            timing = summarize_times(value["times"])
            rows.append(decoder_row(runtime, batch, timing, value["output"], expected))
    return rows, page
