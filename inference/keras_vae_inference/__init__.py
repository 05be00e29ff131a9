"""Run a keras-vae export bundle with onnxruntime: no TensorFlow, no Keras.

This package imports only NumPy and onnxruntime, so a production image needs
neither TensorFlow nor Keras. It is the `keras-vae-inference` distribution
(`pip install ./inference`); its `serve` extra adds `keras-vae-serve`, an HTTP
server for bundles (`keras_vae_inference.server`).

```python
from keras_vae_inference import ExportedVAE

vae = ExportedVAE("exported/default")
images = vae.sample(16, seed=0)          # (16, 28, 28, 1) float32 in [0, 1]
mean, log_var = vae.encode(images)
images = vae.decode(mean)
```
"""

from keras_vae_inference.bundle import BundleError, sha256, verify_bundle
from keras_vae_inference.exported_vae import ExportedVAE

__all__ = ["BundleError", "ExportedVAE", "sha256", "verify_bundle"]
