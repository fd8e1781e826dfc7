#!/usr/bin/python3
"""The Python reference for `lowbit bench`: the same training step written in PyTorch.

ResNet-20 (CIFAR layout with 1x1 projection shortcuts, as lowbit's models/resnet_cifar.cpp),
DoReFa weights/activations (tanh/max-normalised weights, clip(0,1)+round activations, STE;
first conv, last block output and FC at full precision, as lowbit), SGD with momentum, random
data of the same shape. `--setting kd` times one joint knowledge-distillation step: a
full-precision teacher and a quantized student, each with its own optimizer, posterior KL both
ways (T=1) plus cross-entropy, as lowbit's kd strategy does without attention transfer.

Prints one line: `<setting> <median ms/step> <img/s>`. Uses Debian's python3-torch.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def quantize_unit(r, bits):
    n = 2 ** bits - 1
    return RoundSTE.apply(r * n) / n


def quantize_weight(w, bits):
    if bits == 32:
        return w
    t = torch.tanh(w)
    return 2 * quantize_unit(t / t.abs().max() * 0.5 + 0.5, bits) - 1


class Activation(nn.Module):
    def __init__(self, bits):
        super().__init__()
        self.bits = bits

    def forward(self, x):
        if self.bits == 32:
            return F.relu(x)
        return quantize_unit(torch.clamp(x, 0, 1), self.bits)


class QConv(nn.Conv2d):
    def __init__(self, cin, cout, k, stride, bits):
        super().__init__(cin, cout, k, stride, k // 2, bias=False)
        self.bits = bits

    def forward(self, x):
        return F.conv2d(x, quantize_weight(self.weight, self.bits), None, self.stride, self.padding)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, wbits, abits, last):
        super().__init__()
        self.conv1 = QConv(cin, cout, 3, stride, wbits)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = Activation(abits)
        self.conv2 = QConv(cout, cout, 3, 1, wbits)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(QConv(cin, cout, 1, stride, wbits), nn.BatchNorm2d(cout))
        self.act2 = Activation(32 if last else abits)

    def forward(self, x):
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet20(nn.Module):
    def __init__(self, channels, classes, wbits, abits):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = Activation(abits)
        blocks, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(3):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(Block(cin, width, stride, wbits, abits, stage == 2 and b == 2))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(self.act1(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def kl(target_logits, logits):
    """Batch-mean KL(p_target || p) at T=1, target detached."""
    return F.kl_div(F.log_softmax(logits, 1), F.softmax(target_logits.detach(), 1),
                    reduction="batchmean")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=["fp", "2w2a", "kd"], required=True)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true",
                        help="NHWC layout for the inputs and the networks, as lowbit's --channels-last")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    bits = 32 if args.setting == "fp" else 2
    student = ResNet20(args.channels, args.classes, bits, bits).train()
    opt_s = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    teacher = opt_t = None
    if args.setting == "kd":
        teacher = ResNet20(args.channels, args.classes, 32, 32).train()
        opt_t = torch.optim.SGD(teacher.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(args.batch, args.channels, args.image_size, args.image_size)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
        for net in (student, teacher):
            if net is not None:
                net.to(memory_format=torch.channels_last)
    labels = torch.randint(args.classes, (args.batch,))

    def step():
        logits = student(images)
        if teacher is None:
            loss = F.cross_entropy(logits, labels)
            opt_s.zero_grad()
            loss.backward()
            opt_s.step()
            return
        teacher_logits = teacher(images)
        loss_s = 0.5 * F.cross_entropy(logits, labels) + 0.5 * kl(teacher_logits, logits)
        loss_t = 1.0 * F.cross_entropy(teacher_logits, labels) + 0.5 * kl(logits, teacher_logits)
        opt_s.zero_grad()
        opt_t.zero_grad()
        (loss_s + loss_t).backward()
        opt_s.step()
        opt_t.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    ms = statistics.median(times)
    print(f"{args.setting} {ms:.1f} {args.batch / (ms / 1000):.0f}")


if __name__ == "__main__":
    main()
