"""A convolutional autoencoder of FashionMNIST clothes.

Strided convolutions squeeze a 28x28 picture into a 7x7 code; the decoder grows it back
with a transposed convolution and an upsampling layer followed by a convolution (the two
common ways to enlarge feature maps). Trained with mean squared error, Adam and an
exponentially decaying learning rate; reconstructions are saved as image grids.
"""

import argparse
import os

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import ExponentialLR
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
from torchvision.utils import save_image


class ConvAutoencoder(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1),  # 28 -> 14
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),  # 14 -> 7
            nn.ReLU(inplace=True),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # 7 -> 14
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),  # 14 -> 28
            nn.Conv2d(width, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


def run_epoch(model, loader, device, optimizer=None, log_interval=10, epoch=0):
    """Mean loss per image over ``loader``; trains when an optimizer is given."""
    criterion = nn.MSELoss()
    model.train(optimizer is not None)
    total = 0.0
    with torch.set_grad_enabled(optimizer is not None):
        for step, (images, _) in enumerate(loader):
            images = images.to(device)
            loss = criterion(model(images), images)
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step % log_interval == 0:
                    print(f"epoch {epoch} batch {step:3d} loss: {loss.item():.5f}")
            total += loss.item() * images.size(0)
    return total / len(loader.dataset)


def main(argv=None):
    parser = argparse.ArgumentParser(description="convolutional autoencoder on FashionMNIST")
    parser.add_argument("--data", default="../data")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--no-accel", action="store_true")
    parser.add_argument("--out", default="autoencoder_out")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    if torch.cuda.is_available() and not args.no_accel:
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    os.makedirs(args.out, exist_ok=True)

    to_tensor = transforms.ToTensor()
    train_set = datasets.FashionMNIST(args.data, train=True, transform=to_tensor)
    test_set = datasets.FashionMNIST(args.data, train=False, transform=to_tensor)
    kinds = ", ".join(train_set.classes[:3])
    print(f"{len(train_set)} training and {len(test_set)} test images ({kinds}, ...)")
    train_loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers
    )
    test_loader = DataLoader(test_set, batch_size=args.batch_size, num_workers=args.workers)

    model = ConvAutoencoder(args.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = ExponentialLR(optimizer, gamma=args.gamma)
    best = float("inf")
    for epoch in range(1, args.epochs + 1):
        train_loss = run_epoch(model, train_loader, device, optimizer, args.log_interval, epoch)
        test_loss = run_epoch(model, test_loader, device)
        scheduler.step()
        print(f"epoch {epoch}: train loss: {train_loss:.5f}, test loss: {test_loss:.5f}")
        if test_loss < best:
            best = test_loss
            torch.save(model.state_dict(), os.path.join(args.out, "best.pt"))
    model.load_state_dict(torch.load(os.path.join(args.out, "best.pt")))
    images = next(iter(test_loader))[0][:8].to(device)
    with torch.no_grad():
        grid = torch.cat([images, model(images)])
    save_image(grid, os.path.join(args.out, "reconstructions.png"), nrow=8)
    print(f"best test loss: {best:.5f}")


if __name__ == "__main__":
    main()
