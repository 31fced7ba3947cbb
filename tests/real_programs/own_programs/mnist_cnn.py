"""Digit classification on MNIST with a small convolutional network.

A typical PyTorch training script: command-line options, device selection, DataLoaders over
torchvision's MNIST, Adadelta with a step-wise learning-rate decay, a test pass after every
epoch and an optional checkpoint of the weights.
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torchvision import datasets, transforms

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DigitNet(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and two fully connected layers."""

    def __init__(self, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
        )
        self.hidden = nn.Linear(2 * width * 12 * 12, 64)
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        x = self.dropout(F.relu(self.hidden(x)))
        return F.log_softmax(self.classifier(x), dim=1)


def train(args, model, device, loader, optimizer, epoch):
    """One pass over ``loader``; returns the mean of the batch losses."""
    model.train()
    total, batches = 0.0, 0
    for step, (images, labels) in enumerate(loader):
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
        if step % args.log_interval == 0:
            seen = step * len(images)
            print(
                f"Train Epoch: {epoch} [{seen}/{len(loader.dataset)} "
                f"({100.0 * step / len(loader):.0f}%)]\tLoss: {loss.item():.6f}"
            )
        if args.dry_run:
            break
    return total / max(batches, 1)


def evaluate(model, device, loader):
    """Summed negative log-likelihood and number of correct predictions over ``loader``."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            output = model(images)
            loss_sum += F.nll_loss(output, labels, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(labels.view_as(pred)).sum().item()
    n = len(loader.dataset)
    print(
        f"\nTest set: Average loss: {loss_sum / n:.4f}, "
        f"Accuracy: {correct}/{n} ({100.0 * correct / n:.0f}%)\n"
    )
    return correct


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="MNIST digits with a small CNN")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--test-batch-size", type=int, default=1000, metavar="N")
    parser.add_argument("--epochs", type=int, default=14, metavar="N")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M")
    parser.add_argument("--no-accel", action="store_true", help="stay on the CPU")
    parser.add_argument("--dry-run", action="store_true", help="one batch per epoch")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--data", default="../data", help="where MNIST's files are")
    parser.add_argument("--save-model", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    torch.manual_seed(args.seed)
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")

    loader_options = {"num_workers": args.workers, "pin_memory": use_accel}
    pipeline = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    )
    train_set = datasets.MNIST(args.data, train=True, download=False, transform=pipeline)
    test_set = datasets.MNIST(args.data, train=False, transform=pipeline)
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, **loader_options
    )
    test_loader = torch.utils.data.DataLoader(
        test_set, batch_size=args.test_batch_size, shuffle=False, **loader_options
    )

    model = DigitNet().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        evaluate(model, device, test_loader)
        scheduler.step()
    print(f"Final learning rate: {scheduler.get_last_lr()[0]:.4f}")

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")


if __name__ == "__main__":
    main()
