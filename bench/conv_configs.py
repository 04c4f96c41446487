"""conv_configs.py — the convolution configurations the benchmarks time (bench_ops.py,
ab_builds.py): the layers the conv family issue names."""

# name: (N, C, H, W, K, R, S, stride, padding, dilation, groups) — the configurations.
CASES = {
    "lenet_conv1": (64, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1),
    "lenet_conv2": (64, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1),
    "alexnet_conv1": (16, 3, 224, 224, 64, 11, 11, 4, 2, 1, 1),
    "resnet_conv1": (16, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1),
    "vgg_conv3_2": (8, 256, 56, 56, 256, 3, 3, 1, 1, 1, 1),
    "resnet_3x3": (32, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
    "resnet_1x1": (32, 256, 56, 56, 64, 1, 1, 1, 0, 1, 1),
    "strided_3x3_s2": (32, 64, 56, 56, 128, 3, 3, 2, 1, 1, 1),
    "dilated_3x3_d4": (8, 64, 64, 64, 64, 3, 3, 1, 4, 4, 1),
    "depthwise_3x3": (32, 128, 56, 56, 128, 3, 3, 1, 1, 1, 128),
}
