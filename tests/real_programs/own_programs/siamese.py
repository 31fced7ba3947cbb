"""A siamese network that tells whether two MNIST digits show the same number.

Both images go through one shared small ResNet (its classifier head cut off with
``children()``); the two feature vectors are concatenated and a small head gives the
probability that the pair matches. Pairs are drawn on the fly: half of them of one class.
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision import transforms as T


class ResidualBlock(nn.Module):
    def __init__(self, channels_in, channels_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm2d(channels_out),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A stem, two residual stages, global average pooling and a classifier."""

    def __init__(self, width=8, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stage1 = ResidualBlock(width, width)
        self.stage2 = ResidualBlock(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.pool(self.stage2(self.stage1(self.stem(x))))
        return self.fc(torch.flatten(x, 1))


class SiameseNet(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        backbone = SmallResNet(width)
        # Everything but the classifier: the pooled features are what the pair shares.
        self.body = nn.Sequential(*list(backbone.children())[:-1])
        features = backbone.fc.in_features
        self.head = nn.Sequential(
            nn.Linear(2 * features, 32), nn.ReLU(inplace=True), nn.Linear(32, 1)
        )
        self.sigmoid = nn.Sigmoid()
        self.head.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            torch.nn.init.xavier_uniform_(module.weight)
            module.bias.data.fill_(0.01)

    def embed(self, x):
        return self.body(x).view(x.size(0), -1)

    def forward(self, left, right):
        both = torch.cat((self.embed(left), self.embed(right)), 1)
        return self.sigmoid(self.head(both))


class DigitPairs(Dataset):
    """Pairs (image, image, 1.0 if same digit else 0.0) over a torchvision dataset."""

    def __init__(self, digits, transform=None):
        self.images = digits.data.unsqueeze(1).float() / 255.0
        self.labels = digits.targets
        self.transform = transform
        self.by_class = {int(c): torch.where(self.labels == c)[0] for c in self.labels.unique()}

    def __len__(self):
        return self.images.shape[0]

    def _pick(self, label):
        members = self.by_class[label]
        return members[torch.randint(0, len(members), (1,)).item()].item()

    def __getitem__(self, index):
        first = self.images[index]
        label = self.labels[index].item()
        if index % 2 == 0:
            partner, match = self._pick(label), 1.0
        else:
            others = [c for c in self.by_class if c != label]
            partner = self._pick(others[torch.randint(0, len(others), (1,)).item()])
            match = 0.0
        second = self.images[partner]
        if self.transform is not None:
            first, second = self.transform(first), self.transform(second)
        return first, second, torch.tensor(match, dtype=torch.float)


def train(args, model, device, loader, optimizer, epoch):
    model.train()
    criterion = nn.BCELoss()
    losses = []
    for step, (left, right, match) in enumerate(loader):
        left, right, match = left.to(device), right.to(device), match.to(device)
        optimizer.zero_grad()
        loss = criterion(model(left, right).squeeze(), match)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % args.log_interval == 0:
            progress = 100.0 * step / len(loader)
            print(
                f"Train Epoch: {epoch} [{step * len(left)}/{len(loader.dataset)} "
                f"({progress:.0f}%)]\tLoss: {loss.item():.6f}"
            )
            if args.dry_run:
                break
    return losses


def test(model, device, loader):
    model.eval()
    total, correct = 0.0, 0
    criterion = nn.BCELoss(reduction="sum")
    with torch.no_grad():
        for left, right, match in loader:
            left, right, match = left.to(device), right.to(device), match.to(device)
            prob = model(left, right).squeeze(1)
            total += criterion(prob, match).item()
            guess = torch.where(prob > 0.5, 1, 0)
            correct += guess.eq(match.view_as(guess)).sum().item()
    n = len(loader.dataset)
    print(
        f"\nTest set: Average loss: {total / n:.4f}, "
        f"Accuracy: {correct}/{n} ({100.0 * correct / n:.0f}%)\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description="siamese network on MNIST pairs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-batch-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--no-accel", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--save-model", action="store_true")
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    torch.manual_seed(args.seed)
    options = {"num_workers": 1, "pin_memory": True, "shuffle": True} if use_accel else {}

    normalise = T.Normalize((0.1307,), (0.3081,))
    train_pairs = DigitPairs(datasets.MNIST("../data", train=True), normalise)
    test_pairs = DigitPairs(datasets.MNIST("../data", train=False), normalise)
    train_loader = DataLoader(train_pairs, batch_size=args.batch_size, **options)
    test_loader = DataLoader(test_pairs, batch_size=args.test_batch_size, **options)

    model = SiameseNet(args.width).to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader)
        scheduler.step()
    if args.save_model:
        torch.save(model.state_dict(), "siamese.pt")


if __name__ == "__main__":
    main()
