"""Fit a polynomial with a single linear layer on polynomial features.

A hidden polynomial of degree ``--degree`` with random coefficients produces the targets; a
``nn.Linear`` over the features (x, x^2, ..., x^degree) learns them with plain gradient steps
written out by hand until the Huber loss is small.
"""

import argparse
from itertools import count

import torch
import torch.nn.functional as F


def poly_features(x, degree):
    """Rows (x, x^2, ..., x^degree) for a 1-d batch ``x``."""
    x = x.unsqueeze(1)
    return torch.cat([x**power for power in range(1, degree + 1)], 1)


def describe(weight, bias):
    """The polynomial as text, highest power first."""
    terms = [f"{bias.item():+.2f}"]
    for power, w in enumerate(weight.view(-1).tolist(), start=1):
        terms.append(f"{w:+.2f} x^{power}")
    return "y = " + " ".join(reversed(terms))


class HiddenPolynomial:
    """The function to recover: fixed random coefficients drawn at construction."""

    def __init__(self, degree):
        self.weight = torch.randn(degree, 1) * 0.5
        self.bias = torch.randn(1) * 0.5
        self.degree = degree

    def __call__(self, features):
        return features.mm(self.weight) + self.bias.item()

    def batch(self, size):
        x = torch.randn(size)
        features = poly_features(x, self.degree)
        return features, self(features)


def gradient_step(model, features, targets, lr):
    """One step of gradient descent on the Huber loss, updating the parameters in place."""
    model.zero_grad()
    loss = F.smooth_l1_loss(model(features), targets)
    loss.backward()
    for param in model.parameters():
        param.data.add_(param.grad, alpha=-lr)
    return loss.item()


def main(argv=None):
    parser = argparse.ArgumentParser(description="polynomial regression")
    parser.add_argument("--degree", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--max-batches", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    target = HiddenPolynomial(args.degree)
    model = torch.nn.Linear(args.degree, 1)
    for batches in count(1):
        loss = gradient_step(model, *target.batch(args.batch_size), lr=args.lr)
        if loss < args.tolerance or batches == args.max_batches:
            break
    print(f"Loss: {loss:.6f} after {batches} batches")
    print("==> Learned function:\t" + describe(model.weight, model.bias))
    print("==> Actual function:\t" + describe(target.weight, target.bias))


if __name__ == "__main__":
    main()
