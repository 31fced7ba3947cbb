"""Hinton's forward-forward algorithm on MNIST: every layer learns on its own.

The label is written into the first ten pixels of the flattened image. Each layer is
trained to give a high "goodness" (mean squared activity) for images with their true label
and a low one for images with a wrong label; its outputs are detached before the next layer
sees them, so no gradient crosses layers. Prediction picks the label whose overlay gives the
highest total goodness.
"""

import argparse

import torch
import torch.nn as nn
from torch.optim import Adam
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST
from torchvision.transforms import Compose, Lambda, Normalize, ToTensor


def overlay(images, labels):
    """Copies of flattened ``images`` with the one-hot ``labels`` in the first 10 pixels."""
    marked = images.clone()
    marked[:, :10] *= 0.0
    marked[range(images.shape[0]), labels] = images.max()
    return marked


class LocalLayer(nn.Linear):
    """A ReLU layer with its own optimiser and its own goodness objective."""

    def __init__(self, n_in, n_out, lr, threshold, epochs):
        super().__init__(n_in, n_out)
        self.relu = nn.ReLU()
        self.opt = Adam(self.parameters(), lr=lr)
        self.threshold = threshold
        self.epochs = epochs

    def forward(self, x):
        # Only the direction of the previous activity is passed on, not its goodness.
        direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(torch.mm(direction, self.weight.T) + self.bias.unsqueeze(0))

    def fit(self, positive, negative, log_interval, index):
        for epoch in range(self.epochs):
            good_pos = self.forward(positive).pow(2).mean(1)
            good_neg = self.forward(negative).pow(2).mean(1)
            margins = torch.cat([self.threshold - good_pos, good_neg - self.threshold])
            loss = torch.log(1 + torch.exp(margins)).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            if epoch % log_interval == 0:
                print(f"layer {index} epoch {epoch} loss: {loss.item():.4f}")
        return self.forward(positive).detach(), self.forward(negative).detach()


class ForwardForwardNet(torch.nn.Module):
    def __init__(self, sizes, args):
        super().__init__()
        self.layers = nn.ModuleList(
            LocalLayer(a, b, args.lr, args.threshold, args.epochs)
            for a, b in zip(sizes[:-1], sizes[1:])
        )

    def predict(self, images):
        scores = []
        for label in range(10):
            h = overlay(images, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness.append(h.pow(2).mean(1))
            scores.append(sum(goodness).unsqueeze(1))
        return torch.cat(scores, 1).argmax(1)

    def fit(self, positive, negative, log_interval):
        for index, layer in enumerate(self.layers):
            positive, negative = layer.fit(positive, negative, log_interval, index)


def main(argv=None):
    parser = argparse.ArgumentParser(description="forward-forward training on MNIST")
    parser.add_argument("--epochs", type=int, default=1000, help="steps per layer")
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--threshold", type=float, default=2.0)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=100)
    parser.add_argument("--no-accel", action="store_true")
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    torch.manual_seed(args.seed)

    pipeline = Compose(
        [ToTensor(), Normalize((0.1307,), (0.3081,)), Lambda(lambda x: torch.flatten(x))]
    )
    train_loader = DataLoader(
        MNIST("./data/", train=True, transform=pipeline), batch_size=args.train_size, shuffle=True
    )
    test_loader = DataLoader(
        MNIST("./data/", train=False, transform=pipeline), batch_size=args.test_size
    )

    net = ForwardForwardNet([784, args.hidden, args.hidden], args).to(device)
    images, labels = next(iter(train_loader))
    images, labels = images.to(device), labels.to(device)
    positive = overlay(images, labels)
    wrong = labels[torch.randperm(images.size(0))]
    negative = overlay(images, wrong)
    net.fit(positive, negative, args.log_interval)
    print(f"train error: {1.0 - net.predict(images).eq(labels).float().mean().item():.4f}")

    test_images, test_labels = next(iter(test_loader))
    test_images, test_labels = test_images.to(device), test_labels.to(device)
    error = 1.0 - net.predict(test_images).eq(test_labels).float().mean().item()
    print(f"test error: {error:.4f}")


if __name__ == "__main__":
    main()
