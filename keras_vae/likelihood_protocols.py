"""How a likelihood figure is measured, as plain data (importable without TensorFlow).

`published` is the protocol of the published likelihood tables (Burda et al.,
2016; Tomczak & Welling, 2018): the IWAE estimate with k=5000 importance samples
on the whole test set, binarised once with a fixed seed. `quick` is a cheaper
estimate for routine runs, not comparable with the tables.
"""

PUBLISHED_K = 5000
# IWAE settings by protocol name: (k, test images, the first ones; None for all).
PROTOCOLS = {"quick": (1000, 2000), "published": (PUBLISHED_K, None)}
