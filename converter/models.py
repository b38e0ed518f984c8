"""Keras architectures for 48x48 greyscale emotion recognition, sized for a Pi core."""
from __future__ import annotations

from typing import Callable

import keras
from keras import layers

NUM_CLASSES = 7


def _conv_bn_relu(x, filters: int, stride: int = 1, name: str = ""):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _head(x, dropout: float, num_classes: int):
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def build_vgg(input_size: int = 48, width: int = 32, dropout: float = 0.4,
              num_classes: int = NUM_CLASSES) -> keras.Model:
    """A plain VGG-style CNN: four stages of two 3x3 conv-BN-ReLU, max-pool between.

    The first stage runs at full resolution with few channels; width doubles
    at each of the next stages, so most multiply-accumulates sit at 12x12
    and 6x6 where they buy the most.
    """
    inp = keras.Input((input_size, input_size, 1), name="face")
    widths = [width // 2, width, width * 2, width * 4]
    x = inp
    for stage, w in enumerate(widths):
        x = _conv_bn_relu(x, w, name=f"s{stage}a")
        x = _conv_bn_relu(x, w, name=f"s{stage}b")
        if stage < len(widths) - 1:
            x = layers.MaxPooling2D(2, name=f"s{stage}_pool")(x)
            x = layers.SpatialDropout2D(0.1, name=f"s{stage}_drop")(x)
    return keras.Model(inp, _head(x, dropout, num_classes), name=f"vgg{width}")


def _residual_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = _conv_bn_relu(x, filters, stride=stride, name=f"{name}_1")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_2_bn")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_proj_conv")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet(input_size: int = 48, width: int = 32, dropout: float = 0.3,
                 num_classes: int = NUM_CLASSES) -> keras.Model:
    """A deeper residual CNN: a full-resolution stem, then three stages of two
    residual blocks (stride 2 at the start of each), ResNet-18 style but narrow."""
    inp = keras.Input((input_size, input_size, 1), name="face")
    x = _conv_bn_relu(inp, width // 2, name="stem")
    x = _conv_bn_relu(x, width // 2, stride=2, name="stem_down")
    for stage, w in enumerate([width, width * 2, width * 4]):
        x = _residual_block(x, w, stride=1 if stage == 0 else 2, name=f"r{stage}a")
        x = _residual_block(x, w, stride=1, name=f"r{stage}b")
    return keras.Model(inp, _head(x, dropout, num_classes), name=f"resnet{width}")


def build_tiny(input_size: int = 48, width: int = 8, dropout: float = 0.0,
               num_classes: int = NUM_CLASSES) -> keras.Model:
    """A very small CNN for tests and smoke runs (seconds per epoch). No batch norm:
    its moving statistics would not settle in the few steps such runs take."""
    inp = keras.Input((input_size, input_size, 1), name="face")
    x = inp
    for i, (filters, stride) in enumerate([(width, 1), (width * 2, 2), (width * 2, 2)]):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu",
                          name=f"t{i}_conv")(x)
    return keras.Model(inp, _head(x, dropout, num_classes), name="tiny")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "vgg": build_vgg,
    "resnet": build_resnet,
    "tiny": build_tiny,
}


def build(arch: str, input_size: int = 48, width: int | None = None) -> keras.Model:
    """Build a named architecture; `width` overrides its default base width."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    kwargs = {"input_size": input_size}
    if width is not None:
        kwargs["width"] = width
    return ARCHITECTURES[arch](**kwargs)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass (conv, depthwise conv and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.DepthwiseConv2D,)):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, layers.SeparableConv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += h * w * c_in * kh * kw + h * w * c_in * c_out
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * c_in
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
