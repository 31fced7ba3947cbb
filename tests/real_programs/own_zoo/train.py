"""Train a model of the zoo on CIFAR-10 with SGD and a cosine learning-rate schedule.

Usage: ``python train.py --arch resnet18 --data ./data``. Add ``--resume`` to continue from the
checkpoint, which holds the best test accuracy's weights, optimizer and scheduler state.
"""

import argparse
import json
import os

import models
import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
from torch.utils.data import DataLoader

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def parse_args():
    """The command line's options."""
    parser = argparse.ArgumentParser(description="CIFAR-10 training")
    parser.add_argument("--arch", default="resnet18", choices=sorted(models.ARCHITECTURES))
    parser.add_argument("--model-args", default="{}", help="JSON keyword arguments of the model")
    parser.add_argument("--data", default="./data", help="folder holding cifar-10-batches-py")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-batches", type=int, default=0, help="per epoch; 0 = all")
    parser.add_argument("--checkpoint", default="./checkpoint/ckpt.pth")
    parser.add_argument("--resume", "-r", action="store_true", help="resume from --checkpoint")
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args()


def loaders(args):
    """Training (augmented, shuffled) and test data loaders."""
    train_transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    test_transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    train_set = torchvision.datasets.CIFAR10(
        root=args.data, train=True, download=False, transform=train_transform
    )
    test_set = torchvision.datasets.CIFAR10(
        root=args.data, train=False, download=False, transform=test_transform
    )
    train_loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers
    )
    test_loader = DataLoader(test_set, batch_size=100, shuffle=False, num_workers=args.workers)
    return train_loader, test_loader


def run_epoch(net, loader, criterion, device, max_batches, optimizer=None):
    """One pass over `loader`; trains when an optimizer is given. Returns (loss, accuracy %)."""
    total_loss, correct, seen = 0.0, 0, 0
    for index, (inputs, targets) in enumerate(loader):
        if max_batches and index == max_batches:
            break
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total_loss += loss.item() * targets.size(0)
        correct += outputs.argmax(1).eq(targets).sum().item()
        seen += targets.size(0)
    return total_loss / seen, 100.0 * correct / seen, correct, seen


def main():
    """Train, test after every epoch, checkpoint the best model."""
    args = parse_args()
    if args.seed is not None:
        torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    train_loader, test_loader = loaders(args)

    net = models.build(args.arch, **json.loads(args.model_args)).to(device)
    if device == "cuda":
        net = torch.nn.DataParallel(net)
        cudnn.benchmark = True
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(
        net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    best_acc, start_epoch = 0.0, 0
    if args.resume:
        checkpoint = torch.load(args.checkpoint, map_location=device)
        net.load_state_dict(checkpoint["net"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        best_acc, start_epoch = checkpoint["acc"], checkpoint["epoch"] + 1
        print(f"resumed from epoch {checkpoint['epoch']} (best accuracy {best_acc:.2f}%)")

    for epoch in range(start_epoch, args.epochs):
        net.train()
        loss, acc, correct, seen = run_epoch(
            net, train_loader, criterion, device, args.max_batches, optimizer
        )
        print(f"epoch {epoch} train loss {loss:.4f} acc {acc:.2f}% ({correct}/{seen})")
        net.eval()
        with torch.no_grad():
            loss, acc, correct, seen = run_epoch(
                net, test_loader, criterion, device, args.max_batches
            )
        print(f"epoch {epoch} test loss {loss:.4f} acc {acc:.2f}% ({correct}/{seen})")
        scheduler.step()
        if acc > best_acc:
            best_acc = acc
            state = {
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "acc": acc,
                "epoch": epoch,
            }
            os.makedirs(os.path.dirname(args.checkpoint) or ".", exist_ok=True)
            torch.save(state, args.checkpoint)
            print(f"saved checkpoint (accuracy {acc:.2f}%)")
    print(f"best test accuracy {best_acc:.2f}%")


if __name__ == "__main__":
    main()
