"""How far the kit's float results move with the CPU's code paths (docs/reproducibility.md).

    python scripts/numerics_check.py            # this process's settings
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python scripts/numerics_check.py
    OMP_NUM_THREADS=1 python scripts/numerics_check.py

Prints, for the tests whose tolerances depend on it: the two exact FID routes on few features
(tests/test_metrics.py), a DMN batch against one face (tests/test_nn_modules.py), and the authors'
generator layout against the kit's import at 256 px with the kit's own float32 error against a
float64 copy (tests/test_interop.py; --interop, about 4 GB of memory and a minute). A developer's
tool: it reads the test suite's reference modules.
"""
import copy
import pathlib
import sys
import tempfile

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from maskgan.device import kernel_settings
    from maskgan.metrics import fid_from_features, frechet_distance, gaussian_stats
    print("settings:", kernel_settings())
    g = torch.Generator().manual_seed(0)
    fa, fb = torch.randn(5, 12, generator=g, dtype=torch.float64), torch.randn(7, 12, generator=g, dtype=torch.float64)
    exact = frechet_distance(*gaussian_stats(fa), *gaussian_stats(fb))
    for name, value in (("a, b", fid_from_features(fa, fb)), ("b, a", fid_from_features(fb, fa))):
        print(f"FID, 5 and 7 features in 12 dimensions, n x n route ({name}) against the covariance route: "
              f"relative difference {abs(value - exact) / exact:.3g}")

    from test_nn_modules import SMOKE_DMN, _image, _mask

    from maskgan.nn.dmn import DenseMappingNetwork
    torch.manual_seed(0)
    net = DenseMappingNetwork(**SMOKE_DMN)
    masks = _mask(3, 32, 5)
    with torch.no_grad():
        style = net.style(_image(1, 32), _mask(1, 32))
        diff = (net.render(masks, style)[1:2] - net.render(masks[1:2], style)).abs().max()
    print(f"smoke DMN, a batch of 3 against one face: max difference {float(diff):.3g}")

    if "--interop" in sys.argv:
        import test_interop as T
        from authors_layout import DemoGenerator

        from maskgan.interop import authors as A
        from maskgan.labels import one_hot
        demo = T.random_net(DemoGenerator, seed=1)
        path = T.save(demo, pathlib.Path(tempfile.mkdtemp()) / "latest_net_G.pth")
        kit = A.load_authors_generator(path, A.paper_config(256))[0]
        image, label, _ = T.face(256, seed=4)
        with torch.no_grad():
            theirs = demo(one_hot(label[None]), one_hot(label[None]), image[None])
            ours = kit(one_hot(label[None]), image[None])
            exact = copy.deepcopy(kit).double()(one_hot(label[None]).double(), image[None].double())
        print(f"paper DMN at 256 px, the kit against the authors' layout: max difference {T.maxdiff(ours, theirs):.3g}")
        print(f"paper DMN at 256 px, the kit's float32 against float64: max difference "
              f"{T.maxdiff(ours.double(), exact):.3g}")


if __name__ == "__main__":
    main()
