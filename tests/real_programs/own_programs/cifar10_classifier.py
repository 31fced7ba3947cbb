"""Image classification on CIFAR-10 with data augmentation and a VGG-style network.

Training images are randomly cropped from a padded copy and flipped; a slice of the training
set is held out for validation with ``random_split``. SGD with Nesterov momentum and weight
decay follows a one-cycle learning-rate schedule stepped every batch; gradients are clipped.
The best model (by validation accuracy) is checkpointed with its epoch and accuracy, reloaded
at the end and scored per class on the test set.
"""

import argparse
import os

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, random_split
from torchvision import datasets, transforms

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

# Output channels per convolution, "M" for a 2x2 max-pool.
LAYOUTS = {
    "tiny": [8, "M", 16, "M", 32, "M"],
    "small": [32, 32, "M", 64, 64, "M", 128, 128, "M"],
}


class VGGish(nn.Module):
    def __init__(self, layout="small", num_classes=10, dropout=0.3):
        super().__init__()
        layers, channels = [], 3
        for item in LAYOUTS[layout]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [
                    nn.Conv2d(channels, item, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(item),
                    nn.ReLU(inplace=True),
                ]
                channels = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.classifier(self.features(x))


def train_epoch(model, loader, criterion, optimizer, scheduler, device, args, epoch):
    model.train()
    running, seen, correct = 0.0, 0, 0
    for step, (inputs, targets) in enumerate(loader):
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=args.clip)
        optimizer.step()
        scheduler.step()
        running += loss.item() * targets.size(0)
        seen += targets.size(0)
        correct += outputs.argmax(1).eq(targets).sum().item()
        if step % args.log_interval == 0:
            lr = optimizer.param_groups[0]["lr"]
            print(f"epoch {epoch} step {step}/{len(loader)} lr {lr:.5f} loss: {loss.item():.4f}")
    return running / seen, 100.0 * correct / seen


@torch.no_grad()
def evaluate(model, loader, criterion, device, num_classes=10):
    """Mean loss, accuracy (%) and the confusion matrix (rows: true class)."""
    model.eval()
    total, confusion = 0.0, torch.zeros(num_classes * num_classes, dtype=torch.long)
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        total += criterion(outputs, targets).item() * targets.size(0)
        cells = targets * num_classes + outputs.argmax(dim=1)
        confusion += torch.bincount(cells.cpu(), minlength=num_classes * num_classes)
    confusion = confusion.view(num_classes, num_classes)
    n = int(confusion.sum())
    return total / n, 100.0 * confusion.diag().sum().item() / n, confusion


def main(argv=None):
    parser = argparse.ArgumentParser(description="CIFAR-10 classifier with augmentation")
    parser.add_argument("--data", default="../data")
    parser.add_argument("--layout", default="small", choices=sorted(LAYOUTS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-interval", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="checkpoint/cifar10.pth")
    parser.add_argument("--no-accel", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    print(f"Using device: {device.type}")

    normalize = transforms.Normalize(CIFAR_MEAN, CIFAR_STD)
    augment = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    plain = transforms.Compose([transforms.ToTensor(), normalize])
    full_train = datasets.CIFAR10(args.data, train=True, download=False, transform=augment)
    test_set = datasets.CIFAR10(args.data, train=False, download=False, transform=plain)
    n_val = int(len(full_train) * args.val_fraction)
    split = torch.Generator().manual_seed(42)
    train_set, val_set = random_split(full_train, [len(full_train) - n_val, n_val], split)
    print(f"train {len(train_set)}, validation {len(val_set)}, test {len(test_set)}")

    options = {"num_workers": args.workers, "pin_memory": use_accel}
    train_loader = DataLoader(train_set, args.batch_size, shuffle=True, drop_last=True, **options)
    val_loader = DataLoader(val_set, batch_size=256, shuffle=False, **options)
    test_loader = DataLoader(test_set, batch_size=256, shuffle=False, **options)

    model = VGGish(args.layout).to(device)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{n_params} trainable parameters")
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=args.weight_decay,
    )
    scheduler = OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader)
    )

    best = -1.0
    os.makedirs(os.path.dirname(args.checkpoint) or ".", exist_ok=True)
    for epoch in range(args.epochs):
        train_loss, train_acc = train_epoch(
            model, train_loader, criterion, optimizer, scheduler, device, args, epoch
        )
        val_loss, val_acc, _ = evaluate(model, val_loader, criterion, device)
        print(
            f"epoch {epoch}: train loss: {train_loss:.4f} acc {train_acc:.2f}% | "
            f"val loss: {val_loss:.4f} acc {val_acc:.2f}%"
        )
        if val_acc > best:
            best = val_acc
            state = {"net": model.state_dict(), "acc": val_acc, "epoch": epoch}
            torch.save(state, args.checkpoint)

    checkpoint = torch.load(args.checkpoint)
    model.load_state_dict(checkpoint["net"])
    print(f"restored epoch {checkpoint['epoch']} (val acc {checkpoint['acc']:.2f}%)")
    test_loss, test_acc, confusion = evaluate(model, test_loader, criterion, device)
    print(f"test loss: {test_loss:.4f} acc {test_acc:.2f}%")
    per_class = confusion.diag().float() / confusion.sum(1).clamp(min=1).float()
    for name, acc in zip(test_set.classes, per_class.tolist()):
        print(f"  {name:>10s}: {100 * acc:5.1f}%")


if __name__ == "__main__":
    main()
